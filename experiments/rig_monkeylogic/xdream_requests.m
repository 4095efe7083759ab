function out = xdream_requests(action, varargin)
% XDREAM_REQUESTS  The rig side of xdream-rig/1 (docs/protocol.md) for a task that presents
% between other work (a MonkeyLogic userloop): answers hello and ping, hands over each new
% present request, sends its result and keeps results by request id, so a resend is answered
% from the cache and never presented again. Over the MATLAB-language ZeroMQ link
% (experiments/rig_matlab/zmtp_socket.m): no compiled binding.
%
%   link = xdream_requests('open', endpoint, channels)  'tcp://HOST:PORT' binds; '>tcp://...' dials xdream
%   job  = xdream_requests('poll', link, wait_ms, progress)  [] or a new request: .header, .images
%                                                          ({H x W x C uint8}), .id, .received (tic
%                                                          at receipt: the deadline's start)
%   xdream_requests('result', link, job, records, complete)
%   xdream_requests('close', link)
%
% It takes raw uint8 images; anything else is refused with the protocol's error code.
% It offers the content probe (docs/protocol.md §4.5): a present with "probe": true is still
% scheduled as trials, but each record's values are xdream_requests('probe', image, channels),
% computed from the pixels received, instead of the response source's.
%
%   values = xdream_requests('probe', image, nchannels)  1 x nchannels double
switch action
  case 'open'
    [endpoint, channels] = varargin{:};
    if isempty(which('zmtp_socket'))
      addpath(fullfile(fileparts(mfilename('fullpath')), '..', 'rig_matlab'));
    end
    out = containers.Map('KeyType', 'char', 'ValueType', 'any');
    out('sock') = zmtp_socket('open', endpoint);
    out('channels') = channels;
    out('sessions') = containers.Map();
    out('cache') = containers.Map();  % request id -> {payload, result JSON, records}
    out('current') = '';  % the request being presented
    out('envelope') = {};
  case 'poll'
    [link, wait_ms, progress] = varargin{:};
    out = [];
    frames = zmtp_socket('recv', link('sock'), wait_ms);
    while ~isempty(frames)
      job = handle(link, frames, progress);
      if ~isempty(job)
        out = job;
        progress = 0;  % a ping later in this batch asks about the new request: nothing shown yet
      end
      frames = zmtp_socket('recv', link('sock'), 0);
    end
  case 'result'
    [link, job, records, complete] = varargin{:};
    result = struct('protocol', 'xdream-rig/1', 'type', 'result', 'request_id', job.id, 'complete', complete);
    result.channels = link('channels');
    result.records = records;
    text = jsonencode(result);
    cache = link('cache'); cache(job.id) = {link('payload'), text, numel(records)};
    link('current') = '';
    zmtp_socket('send', link('sock'), [link('envelope'), {uint8(text)}]);
  case 'probe'
    out = probe(varargin{:});
  case 'close'
    zmtp_socket('close', varargin{1}('sock'));
  otherwise
    error('xdream_requests: unknown action %s', action);
end
end

function job = handle(link, frames, progress)
job = [];
n = 1 + (numel(frames) > 2 && isempty(frames{2}));  % a REQ client's empty delimiter
envelope = frames(1:n);
body = frames(n + 1:end);
if ~isempty(body) && numel(body{1}) > 8 * 2^20  % checked before parsing (docs/protocol.md §3)
  reply(link, envelope, refusal(NaN, 'too-large', 'a header has at most 8 MiB')); return;
end
text = '';
if ~isempty(body), text = char(body{1}); end
[h, problem] = parse_header(text);
rid = NaN;  % written as null
if isstruct(h) && isfield(h, 'request_id') && is_id(h.request_id), rid = h.request_id; end
if ~isempty(problem)
  reply(link, envelope, refusal(rid, 'bad-message', problem)); return;
end
if ~isfield(h, 'protocol') || ~isequal(h.protocol, 'xdream-rig/1')
  reply(link, envelope, refusal(rid, 'version', 'this rig speaks xdream-rig/1')); return;
end
allowed = struct('hello', {{'session', 'request_id', 'client', 'encodings', 'dtypes'}}, ...
                 'ping', {{'session', 'request_id'}}, ...
                 'present', {{'session', 'request_id', 'generation', 'image_ids', 'encoding', 'dtype', 'shape', ...
                              'repeats', 'deadline_ms', 'probe'}});
if ~isfield(h, 'type') || ~ischar(h.type) || ~isfield(allowed, h.type)
  reply(link, envelope, refusal(rid, 'bad-message', 'type must be hello, ping or present')); return;
end
extra = setdiff(fieldnames(h), [allowed.(h.type), {'protocol', 'type'}]);
if ~isempty(extra)
  reply(link, envelope, refusal(rid, 'bad-message', sprintf('unknown field %s', extra{1}))); return;
end
if isfield(h, 'client') && ischar(h.client) && numel(h.client) > 1000
  reply(link, envelope, refusal(rid, 'too-large', 'client has at most 1000 characters')); return;
end
if (isfield(h, 'session') && ischar(h.session) && numel(h.session) > 64) || ...
   (isfield(h, 'request_id') && ischar(h.request_id) && numel(h.request_id) > 64)
  reply(link, envelope, refusal(rid, 'too-large', 'an id has at most 64 characters')); return;
end
if ~ischar(rid) || ~isfield(h, 'session') || ~is_id(h.session)
  reply(link, envelope, refusal(rid, 'bad-message', 'session and request_id must be ids (docs/protocol.md §2)')); return;
end
sessions = link('sessions'); cache = link('cache');
switch h.type
  case 'hello'
    sessions(h.session) = true;
    w = struct('protocol', 'xdream-rig/1', 'type', 'welcome', 'request_id', rid, 'rig', 'rig_monkeylogic');
    w.encodings = {'raw'}; w.dtypes = {'uint8'}; w.channels = link('channels');
    w.heartbeat_ms = 30000;  % a pong may wait for the trial in progress to end
    w.probe = true;  % the content probe (docs/protocol.md §4.5)
    reply(link, envelope, w);
  case 'ping'
    if strcmp(rid, link('current'))
      link('envelope') = envelope;
      reply(link, envelope, pong(rid, 'presenting', progress));
    elseif isKey(cache, rid)  % progress: the presentations of the request (docs/protocol.md §4.3)
      entry = cache(rid);
      reply(link, envelope, pong(rid, 'done', entry{3}));
    else
      reply(link, envelope, pong(rid, 'unknown', 0));
    end
  case 'present'
    if ~isKey(sessions, h.session)
      reply(link, envelope, refusal(rid, 'unknown-session', 'send hello first'));
    elseif isKey(cache, rid)
      [~, code, message] = decode(h, body(2:end));  % checked as a new request is: its encoding, dtype, fields
      entry = cache(rid);
      if ~isempty(code)
        reply(link, envelope, refusal(rid, code, message));
      elseif strcmp(entry{1}, payload(h))
        zmtp_socket('send', link('sock'), [envelope, {uint8(entry{2})}]);
      else
        reply(link, envelope, refusal(rid, 'bad-message', 'request id was used for another request'));
      end
    elseif strcmp(rid, link('current'))  % a resend while presenting: checked and compared as above
      [~, code, message] = decode(h, body(2:end));
      if ~isempty(code)
        reply(link, envelope, refusal(rid, code, message));
      elseif ~strcmp(link('payload'), payload(h))
        reply(link, envelope, refusal(rid, 'bad-message', 'request id was used for another request'));
      else
        link('envelope') = envelope;  % answer the newest sender
      end
    elseif ~isempty(link('current'))
      reply(link, envelope, refusal(rid, 'busy', 'presenting another request'));
    else
      received = tic;  % the deadline runs from receipt: decoding and writing the images count (§6)
      [images, code, message] = decode(h, body(2:end));
      if ~isempty(code)
        reply(link, envelope, refusal(rid, code, message)); return;
      end
      ids = h.image_ids;
      if ischar(ids), ids = {ids}; end
      link('current') = rid; link('envelope') = envelope; link('payload') = payload(h);
      job = struct('id', rid, 'header', h, 'image_ids', {reshape(ids, 1, [])}, 'images', {images}, ...
                   'received', received);
    end
  otherwise
    reply(link, envelope, refusal(rid, 'bad-message', 'type must be hello, ping or present'));
end
end

function [images, code, message] = decode(h, data)
images = {}; code = ''; message = '';
need = {'image_ids', 'encoding', 'dtype', 'shape', 'repeats'};
for k = 1:numel(need)
  if ~isfield(h, need{k})
    code = 'bad-message'; message = sprintf('present lacks field %s', need{k}); return;
  end
end
ids = h.image_ids;
if ischar(ids), ids = {ids}; end
if iscell(ids) && any(cellfun(@(v) ischar(v) && numel(v) > 64, ids))
  code = 'too-large'; message = 'an id has at most 64 characters'; return;
end
if ~iscell(ids) || isempty(ids) || ~all(cellfun(@is_id, ids)) || numel(unique(ids)) < numel(ids)
  code = 'bad-message'; message = 'image_ids must be a list of unique ids'; return;
end
[code, message] = in_range(h.repeats, 'repeats', 1, 100);
if isempty(code) && isfield(h, 'deadline_ms'), [code, message] = in_range(h.deadline_ms, 'deadline_ms', 1, 86400000); end
if ~isempty(code), return; end
if numel(ids) > 1024
  code = 'too-large'; message = 'at most 1024 images'; return;
end
if isfield(h, 'probe') && ~(islogical(h.probe) && isscalar(h.probe))
  code = 'bad-message'; message = 'probe must be true or false'; return;
end
shape = reshape(double(h.shape), 1, []);
if ~isnumeric(h.shape) || numel(shape) ~= 3 || ~any(shape(3) == [1, 3])
  code = 'bad-message'; message = 'shape must be [H, W, C] with C 1 or 3'; return;
end
for k = 1:2
  [code, message] = in_range(shape(k), 'an image side', 1, 4096);
  if ~isempty(code), return; end
end
if ~ischar(h.encoding) || ~strcmp(h.encoding, 'raw') || ~ischar(h.dtype) || ~strcmp(h.dtype, 'uint8')
  code = 'unsupported'; message = 'this rig takes raw uint8 images only'; return;
end
if numel(ids) * prod(shape) > 2^28
  code = 'too-large'; message = 'the images decode to more than 256 MiB (max_message_bytes)'; return;
end
if numel(data) ~= numel(ids) || any(cellfun(@numel, data) ~= prod(shape))
  code = 'bad-message'; message = sprintf('need %d frames of %d bytes', numel(ids), prod(shape)); return;
end
images = cell(1, numel(data));
for k = 1:numel(data)
  images{k} = permute(reshape(data{k}, [shape(3), shape(2), shape(1)]), [3, 2, 1]);
end
end

function [h, problem] = parse_header(text)
% A JSON object, strictly (RFC 8259): jsondecode also takes NaN literals and duplicate keys.
h = []; problem = '';
keys = regexp(text, '"((?:[^"\\]|\\.)*)"\s*:', 'tokens');
keys = cellfun(@(t) t{1}, keys, 'UniformOutput', false);
bare = regexprep(regexprep(text, '"(?:[^"\\]|\\.)*"', '""'), '-?\d+(\.\d+)?([eE][+-]?\d+)?', '0');
if numel(unique(keys)) < numel(keys)
  problem = 'duplicate key in the header'; return;
end
if ~all(ismember(regexp(bare, '[A-Za-z]+', 'match'), {'true', 'false', 'null'}))
  problem = 'the header has a non-standard literal (NaN, Infinity?)'; return;
end
try
  h = jsondecode(text);
catch
  problem = 'the header is not JSON'; return;
end
if ~isstruct(h) || ~isscalar(h)
  h = []; problem = 'the header must be a JSON object';
end
end

function [code, message] = in_range(v, name, low, high)
code = ''; message = '';
if ~isnumeric(v) || ~isscalar(v) || v ~= round(v) || v < low
  code = 'bad-message'; message = sprintf('%s must be an integer %d..%d', name, low, high);
elseif v > high
  code = 'too-large'; message = sprintf('%s is %d; the limit is %d', name, v, high);
end
end

function ok = is_id(v)
ok = ischar(v) && ~isempty(regexp(v, '^[A-Za-z0-9_.:\-]{1,64}$', 'once'));
end

function text = payload(h)
% What a resend under the same request id must repeat (docs/protocol.md §5).
ids = h.image_ids;
if ischar(ids), ids = {ids}; end
text = jsonencode(struct('image_ids', {ids}, 'shape', {num2cell(reshape(h.shape, 1, []))}, 'repeats', h.repeats, ...
                         'probe', isfield(h, 'probe') && h.probe));
end

function values = probe(image, channels)
% The content probe (docs/protocol.md §4.5), the rule of experiments/rig_octave/rig.m for every
% channel k = 0..channels-1: the mean of x_i * (mod(i + 3k, 7) - 3) over the pixels x_i / 255
% in row-major [H, W, C] order, i = 0..L-1.
x = double(reshape(permute(image, [3, 2, 1]), [], 1)) / 255;
i = (0:numel(x) - 1)';
values = zeros(1, channels);
for k = 0:channels - 1
  values(k + 1) = sum(x .* (mod(i + 3 * k, 7) - 3)) / numel(x);
end
end

function reply(link, envelope, message)
message.protocol = 'xdream-rig/1';
zmtp_socket('send', link('sock'), [envelope, {uint8(jsonencode(message))}]);
end

function m = refusal(rid, code, message)
m = struct('type', 'error', 'request_id', rid, 'code', code, 'message', message);
end

function m = pong(rid, state, progress)
m = struct('type', 'pong', 'request_id', rid, 'state', state, 'progress', progress);
end
