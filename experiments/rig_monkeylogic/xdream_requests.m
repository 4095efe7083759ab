function out = xdream_requests(action, varargin)
% XDREAM_REQUESTS  The rig side of xdream-rig/1 (docs/protocol.md) for a task that presents
% between other work (a MonkeyLogic userloop): answers hello and ping, hands over each new
% present request, sends its result and keeps results by request id, so a resend is answered
% from the cache and never presented again. Over the MATLAB-language ZeroMQ link
% (experiments/rig_matlab/zmtp_socket.m): no compiled binding.
%
%   link = xdream_requests('open', endpoint, channels)  'tcp://HOST:PORT' binds; '>tcp://...' dials xdream
%   job  = xdream_requests('poll', link, wait_ms, progress)  [] or a new request: .header, .images
%                                                          ({H x W x C uint8}), .id
%   xdream_requests('result', link, job, records, complete)
%   xdream_requests('close', link)
%
% It takes raw uint8 images; anything else is refused with the protocol's error code.
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
    out('cache') = containers.Map();  % request id -> result JSON
    out('current') = '';  % the request being presented
    out('envelope') = {};
  case 'poll'
    [link, wait_ms, progress] = varargin{:};
    out = [];
    frames = zmtp_socket('recv', link('sock'), wait_ms);
    while ~isempty(frames)
      job = handle(link, frames, progress);
      if ~isempty(job), out = job; end
      frames = zmtp_socket('recv', link('sock'), 0);
    end
  case 'result'
    [link, job, records, complete] = varargin{:};
    result = struct('protocol', 'xdream-rig/1', 'type', 'result', 'request_id', job.id, 'complete', complete);
    result.channels = link('channels');
    result.records = records;
    text = jsonencode(result);
    cache = link('cache'); cache(job.id) = text;
    link('current') = '';
    zmtp_socket('send', link('sock'), [link('envelope'), {uint8(text)}]);
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
try
  h = jsondecode(char(body{1}));
catch
  h = [];
end
rid = NaN;
if isstruct(h) && isfield(h, 'request_id') && ischar(h.request_id), rid = h.request_id; end
if ~isstruct(h) || ~isfield(h, 'protocol') || ~isequal(h.protocol, 'xdream-rig/1')
  reply(link, envelope, refusal(rid, 'version', 'this rig speaks xdream-rig/1 (JSON headers)')); return;
end
if ~isfield(h, 'type') || ~ischar(rid) || ~isfield(h, 'session') || ~ischar(h.session)
  reply(link, envelope, refusal(rid, 'bad-message', 'a header needs type, session and request_id')); return;
end
sessions = link('sessions'); cache = link('cache');
switch h.type
  case 'hello'
    sessions(h.session) = true;
    w = struct('protocol', 'xdream-rig/1', 'type', 'welcome', 'request_id', rid, 'rig', 'rig_monkeylogic');
    w.encodings = {'raw'}; w.dtypes = {'uint8'}; w.channels = link('channels');
    w.heartbeat_ms = 30000;  % a pong may wait for the trial in progress to end
    reply(link, envelope, w);
  case 'ping'
    if strcmp(rid, link('current'))
      link('envelope') = envelope;
      reply(link, envelope, pong(rid, 'presenting', progress));
    elseif isKey(cache, rid)
      reply(link, envelope, pong(rid, 'done', 0));
    else
      reply(link, envelope, pong(rid, 'unknown', 0));
    end
  case 'present'
    if ~isKey(sessions, h.session)
      reply(link, envelope, refusal(rid, 'unknown-session', 'send hello first'));
    elseif isKey(cache, rid)
      zmtp_socket('send', link('sock'), [envelope, {uint8(cache(rid))}]);
    elseif strcmp(rid, link('current'))
      link('envelope') = envelope;  % a resend while presenting: answer the newest sender
    elseif ~isempty(link('current'))
      reply(link, envelope, refusal(rid, 'busy', 'presenting another request'));
    else
      [images, code, message] = decode(h, body(2:end));
      if ~isempty(code)
        reply(link, envelope, refusal(rid, code, message)); return;
      end
      ids = h.image_ids;
      if ischar(ids), ids = {ids}; end
      link('current') = rid; link('envelope') = envelope;
      job = struct('id', rid, 'header', h, 'image_ids', {reshape(ids, 1, [])}, 'images', {images});
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
if ~strcmp(h.encoding, 'raw') || ~strcmp(h.dtype, 'uint8')
  code = 'unsupported'; message = 'this rig takes raw uint8 images only'; return;
end
shape = reshape(double(h.shape), 1, []);
ids = h.image_ids;
if ischar(ids), ids = {ids}; end
if numel(shape) ~= 3 || numel(data) ~= numel(ids) || any(cellfun(@numel, data) ~= prod(shape))
  code = 'bad-message'; message = sprintf('need %d frames of %d bytes', numel(ids), prod(shape)); return;
end
if h.repeats < 1 || h.repeats > 100 || h.repeats ~= round(h.repeats)
  code = 'bad-message'; message = 'repeats must be an integer 1..100'; return;
end
images = cell(1, numel(data));
for k = 1:numel(data)
  images{k} = permute(reshape(data{k}, [shape(3), shape(2), shape(1)]), [3, 2, 1]);
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
