function rig(endpoint, cache_file)
% RIG  An xdream-rig/1 rig (docs/protocol.md) in the MATLAB language, for GNU Octave (>= 7, the
% zeromq package) and MATLAB (R2016b+, the matlab-zmq binding). All socket calls are in
% rig_socket.m. It takes uint8 images, raw and (where imread decodes PNG: Octave's
% GraphicsMagick, MATLAB's own) png, answers hello/ping/present, keeps a reply cache by
% request id (appended to CACHE_FILE when given, so a restarted rig neither presents a request
% again nor forgets it) and passes `xdream rig check`.
%
%   octave --no-gui --eval "rig('tcp://127.0.0.1:5555', 'rig-cache.tsv')"
%
% Replace show_and_record() with your stimulus and recording code (Psychtoolbox: Screen('Flip')
% and your photodiode/spike counting).
if nargin < 1, endpoint = 'tcp://127.0.0.1:5555'; end
if nargin < 2, cache_file = ''; end
state.sock = rig_socket('open', endpoint);
[state.cache, state.partial, trials, state.requests] = load_cache(cache_file);  % see load_cache
state.cache_file = cache_file;
state.sessions = containers.Map();
state.clock = tic;
state.trials = containers.Map({'count'}, {trials});  % trial ids go on after a restart (section 4.2)
[state.png, why] = png_works();
state.encodings = {'raw'};
if state.png, state.encodings{end + 1} = 'png'; end
fprintf('rig listening on %s (encodings %s%s)\n', rig_socket('endpoint', state.sock), ...
        strjoin(state.encodings, ', '), why);
flush_output();
while true
  frames = rig_socket('recv', state.sock, 200);
  if isempty(frames), continue; end
  job = handle(state, frames, []);
  if ~isempty(job)
    present(state, job);
  end
end
end

function [onset, value, valid] = show_and_record(image, clock)
% Show one image [H, W, C] uint8 and return (onset seconds, response, valid). This stand-in
% 'neuron' responds with the mean brightness of the image's centre.
[h, w, ~] = size(image);
centre = image(floor(h / 4) + 1:floor(3 * h / 4), floor(w / 4) + 1:floor(3 * w / 4), :);
value = mean(double(centre(:)));
onset = toc(clock);
valid = true;
end

function value = probe(image)
% The content probe (docs/protocol.md section 4.5) of channel 0: the mean of x_i * (mod(i, 7) - 3)
% over the pixels x_i / 255 in row-major [H, W, C] order, i = 0..L-1.
x = double(reshape(permute(image, [3, 2, 1]), [], 1)) / 255;
i = (0:numel(x) - 1)';
value = sum(x .* (mod(i, 7) - 3)) / numel(x);
end

function [job, current] = handle(state, frames, current)
% Answer one message; returns a new request to present (only when none is in progress) and
% the request in progress with its newest sender.
job = [];
received = tic;  % the deadline runs from the receipt of the request (docs/protocol.md section 6)
[envelope, h, data, code, message, rid] = parse(frames, state.png);
if ~isempty(code)
  reply(state, envelope, struct('type', 'error', 'request_id', rid, 'code', code, 'message', message));
  return;
end
switch h.type
  case 'hello'
    state.sessions(h.session) = true;
    w = struct('type', 'welcome', 'request_id', h.request_id, 'rig', 'rig_octave');
    w.encodings = state.encodings; w.dtypes = {'uint8'}; w.channels = {'ch0'};
    w.max_images = 1024; w.max_frame_bytes = 16 * 2^20; w.max_message_bytes = MAX_MESSAGE; w.heartbeat_ms = 1000;
    w.probe = true;  % the content probe (docs/protocol.md section 4.5)
    reply(state, envelope, w);
  case 'ping'
    if ~isempty(current) && strcmp(h.request_id, current.rid)
      current.envelope{1} = envelope;
      reply(state, envelope, pong(h.request_id, 'presenting', current.progress));
    elseif isKey(state.cache, h.request_id)  % progress: the presentations so far (section 4.3)
      entry = state.cache(h.request_id);
      reply(state, envelope, pong(h.request_id, 'done', entry{3}));
    elseif isKey(state.partial, h.request_id)  % interrupted by a crash: the trials before it count
      reply(state, envelope, pong(h.request_id, 'unknown', numel(state.partial(h.request_id))));
    else
      reply(state, envelope, pong(h.request_id, 'unknown', 0));
    end
  case 'present'
    rid = h.request_id;
    if ~isKey(state.sessions, h.session)
      reply(state, envelope, refusal(rid, 'unknown-session', 'send hello first'));
    elseif isKey(state.cache, rid)
      entry = state.cache(rid);
      if strcmp(entry{1}, payload(h))
        rig_socket('send', state.sock, [envelope, {bytes_of(entry{2})}]);
      else
        reply(state, envelope, refusal(rid, 'bad-message', 'request id was used for another request'));
      end
    elseif isKey(state.requests, rid) && ~strcmp(state.requests(rid), payload(h))  % presenting, or interrupted
      reply(state, envelope, refusal(rid, 'bad-message', 'request id was used for another request'));
    elseif ~isempty(current) && strcmp(rid, current.rid)
      current.envelope{1} = envelope;  % a resend while presenting: answer the newest sender
    elseif ~isempty(current)
      reply(state, envelope, refusal(rid, 'busy', 'presenting another request'));
    else
      [images, problem] = decode_images(h, data);
      if isempty(problem)
        job = struct('header', h, 'images', {images}, 'envelope', {envelope}, 'received', received);
      else
        reply(state, envelope, refusal(rid, 'bad-message', problem));
      end
    end
end
end

function present(state, job)
% Present every image `repeats` times until the deadline, answering messages between trials.
h = job.header;
deadline = 600;
if isfield(h, 'deadline_ms'), deadline = h.deadline_ms / 1000; end
started = job.received;
records = {};  % a request interrupted by a crash continues with what is missing (section 5)
if isKey(state.partial, h.request_id), records = state.partial(h.request_id); end
if ~isKey(state.requests, h.request_id)  % its payload, for the resend check of section 5
  state.requests(h.request_id) = payload(h);
  if ~isempty(state.cache_file)
    f = fopen(state.cache_file, 'a');
    fprintf(f, '%s\trequest\t%s\n', h.request_id, payload(h));
    fclose(f);
  end
end
current = struct('rid', h.request_id, 'envelope', {{job.envelope}}, 'progress', numel(records));
for repeat = 0:h.repeats - 1
  for k = 1:numel(h.image_ids)
    if toc(started) > deadline, break; end
    if any(cellfun(@(r) strcmp(r.image_id, h.image_ids{k}) && r.repeat == repeat, records)), continue; end
    [onset, value, valid] = show_and_record(job.images{k}, state.clock);
    if isfield(h, 'probe') && h.probe, value = probe(job.images{k}); valid = true; end
    count = state.trials('count');
    state.trials('count') = count + 1;
    records{end + 1} = struct('image_id', h.image_ids{k}, 'repeat', repeat, 'trial_id', count, ...
                              'onset', onset, 'values', {{value}}, 'valid', valid); %#ok<AGROW>
    current.progress = numel(records);
    if ~isempty(state.cache_file)  % each trial persisted when recorded
      f = fopen(state.cache_file, 'a');
      fprintf(f, '%s\ttrial\t%s\n', h.request_id, encode(records{end}));
      fclose(f);
    end
    frames = rig_socket('recv', state.sock, 0);
    while ~isempty(frames)  % pings and resends between presentations
      [~, current] = handle(state, frames, current);
      frames = rig_socket('recv', state.sock, 0);
    end
  end
end
result = struct('type', 'result', 'request_id', h.request_id, ...
                'complete', numel(records) == h.repeats * numel(h.image_ids));
result.channels = {'ch0'};
result.records = records;
text = encode(result);
state.cache(h.request_id) = {payload(h), text, numel(records)};
if ~isempty(state.cache_file)
  f = fopen(state.cache_file, 'a');
  fprintf(f, '%s\t%s\t%s\n', h.request_id, payload(h), text);
  fclose(f);
end
rig_socket('send', state.sock, [current.envelope{1}, {bytes_of(text)}]);
end

function [envelope, h, data, code, message, rid] = parse(frames, png)
% Split the ROUTER envelope off and validate the header (docs/protocol.md §2-§4).
n = 1;
if numel(frames) > 2 && isempty(frames{2}), n = 2; end  % a REQ client's empty delimiter
envelope = frames(1:n);
body = frames(n + 1:end);
h = []; data = body(2:end); code = ''; message = ''; rid = NaN;  % NaN is written as null
if isempty(body)
  code = 'bad-message'; message = 'empty message'; return;
end
if numel(body{1}) > 8 * 2^20  % checked before parsing (docs/protocol.md section 3)
  code = 'too-large'; message = 'a header has at most 8 MiB'; return;
end
text = text_of(body{1});
problem = strict_json_problem(text);
if isempty(problem)
  try
    h = jsondecode(text);
  catch
    problem = 'frame 0 is not JSON';
  end
end
if isempty(problem) && ~isstruct(h), problem = 'frame 0 must be a JSON object'; end
if ~isempty(problem)
  code = 'bad-message'; message = problem; h = []; return;
end
if isfield(h, 'request_id') && is_id(h.request_id), rid = h.request_id; end
if ~isfield(h, 'protocol') || ~ischar(h.protocol) || ~strcmp(h.protocol, 'xdream-rig/1')
  code = 'version'; message = 'this rig speaks xdream-rig/1'; return;
end
[code, message] = check(h, data, png);
end

function [code, message] = check(h, data, png)
% The fields of hello, ping and present: required, types, ranges and the error code of each
% limit; for png, each frame's PNG header (size, bit depth, colour type) before any decoding.
code = ''; message = '';
allowed.hello = {'session', 'request_id', 'client', 'encodings', 'dtypes'};
allowed.ping = {'session', 'request_id'};
allowed.present = {'session', 'request_id', 'generation', 'image_ids', 'encoding', 'dtype', 'shape', ...
                   'repeats', 'deadline_ms', 'probe'};
if ~isfield(h, 'type') || ~ischar(h.type) || ~isfield(allowed, h.type)
  code = 'bad-message'; message = 'type must be hello, ping or present'; return;
end
names = fieldnames(h);
extra = setdiff(names, [allowed.(h.type), {'protocol', 'type'}]);
if ~isempty(extra)
  code = 'bad-message'; message = sprintf('unknown field %s', extra{1}); return;
end
if isfield(h, 'client') && ischar(h.client) && numel(h.client) > 1000
  code = 'too-large'; message = 'client has at most 1000 characters'; return;
end
if (isfield(h, 'session') && ischar(h.session) && numel(h.session) > 64) || ...
   (isfield(h, 'request_id') && ischar(h.request_id) && numel(h.request_id) > 64)
  code = 'too-large'; message = 'an id has at most 64 characters'; return;
end
if ~isfield(h, 'session') || ~is_id(h.session) || ~isfield(h, 'request_id') || ~is_id(h.request_id)
  code = 'bad-message'; message = 'session and request_id must be 1-64 characters of A-Z a-z 0-9 _ . : -'; return;
end
if ~strcmp(h.type, 'present'), return; end
required = {'image_ids', 'encoding', 'dtype', 'shape', 'repeats'};
for k = 1:numel(required)
  if ~isfield(h, required{k})
    code = 'bad-message'; message = sprintf('present lacks field %s', required{k}); return;
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
limits = {'repeats', 1, 100; 'deadline_ms', 1, 86400000; 'generation', 0, 2^31};
for k = 1:size(limits, 1)
  if isfield(h, limits{k, 1})
    [code, message] = in_range(h.(limits{k, 1}), limits{k, 1}, limits{k, 2}, limits{k, 3});
    if ~isempty(code), return; end
  end
end
if numel(ids) > 1024
  code = 'too-large'; message = 'at most 1024 images'; return;
end
if isfield(h, 'probe') && ~(islogical(h.probe) && isscalar(h.probe))
  code = 'bad-message'; message = 'probe must be true or false'; return;
end
shape = h.shape;
if ~isnumeric(shape) || numel(shape) ~= 3
  code = 'bad-message'; message = 'shape must be [H, W, C]'; return;
end
for k = 1:2
  [code, message] = in_range(shape(k), 'an image side', 1, 4096);
  if ~isempty(code), return; end
end
if ~any(shape(3) == [1, 3])
  code = 'bad-message'; message = 'C must be 1 or 3'; return;
end
encodings = {'raw'};
if png, encodings{end + 1} = 'png'; end
if ~ischar(h.encoding) || ~any(strcmp(h.encoding, encodings)) || ~ischar(h.dtype) || ~strcmp(h.dtype, 'uint8')
  code = 'unsupported'; message = sprintf('this rig takes %s uint8 images only', strjoin(encodings, ' or ')); return;
end
bytes = prod(shape);
if numel(ids) * bytes > MAX_MESSAGE  % checked from the header, before any pixel is decoded
  code = 'too-large';
  message = sprintf('%d images of %dx%dx%d decode to %d bytes; the limit is %d (max_message_bytes)', ...
                    numel(ids), shape(1), shape(2), shape(3), numel(ids) * bytes, MAX_MESSAGE);
  return;
end
if numel(data) ~= numel(ids)
  code = 'bad-message'; message = sprintf('need one data frame per image (%d), got %d', numel(ids), numel(data)); return;
end
if strcmp(h.encoding, 'raw')
  if bytes > 16 * 2^20
    code = 'too-large'; message = 'an image is above max_frame_bytes'; return;
  end
  if any(cellfun(@numel, data) ~= bytes)
    code = 'bad-message'; message = sprintf('need one frame of %d bytes per image', bytes); return;
  end
  return;
end
if any(cellfun(@numel, data) > 16 * 2^20)
  code = 'too-large'; message = 'a png frame is above max_frame_bytes'; return;
end
for k = 1:numel(data)
  message = png_header_problem(data{k}, shape, k - 1);
  if ~isempty(message)
    code = 'bad-message'; return;
  end
end
end

function problem = png_header_problem(frame, shape, index)
% What the PNG header (IHDR) says against the request's [H, W, C]: docs/protocol.md §4.2.
problem = '';
signature = uint8([137 80 78 71 13 10 26 10]);
if numel(frame) < 33 || ~isequal(frame(1:8), signature) || ~strcmp(char(frame(13:16)), 'IHDR')
  problem = sprintf('png image %d is not a PNG file', index); return;
end
w = double(frame(17:20)) * [2^24; 2^16; 2^8; 1];
h = double(frame(21:24)) * [2^24; 2^16; 2^8; 1];
colour_type = 2 * (shape(3) == 3);  % truecolour (RGB) or greyscale
if frame(25) ~= 8 || frame(26) ~= colour_type
  problem = sprintf(['png image %d has bit depth %d and colour type %d; allowed: 8-bit, colour type %d ' ...
                     '(no alpha, palette or 16-bit)'], index, frame(25), frame(26), colour_type);
elseif w ~= shape(2) || h ~= shape(1)
  problem = sprintf('png image %d is %dx%d; the header says %dx%d', index, w, h, shape(2), shape(1));
end
end

function [images, problem] = decode_images(h, data)
% The request's images [H, W, C] uint8, one at a time; a png that decodes to another size
% than the header's shape is refused (bad-message).
shape = reshape(h.shape, 1, []);
images = cell(1, numel(data));
problem = '';
for k = 1:numel(data)
  if strcmp(h.encoding, 'raw')
    images{k} = permute(reshape(data{k}, [shape(3), shape(2), shape(1)]), [3, 2, 1]);
    continue;
  end
  try
    image = decode_png(data{k}, shape(3));
  catch err
    problem = sprintf('png image %d cannot be decoded (%s)', k - 1, strtok(err.message, sprintf('\n')));
    return;
  end
  if size(image, 1) ~= shape(1) || size(image, 2) ~= shape(2) || size(image, 3) ~= shape(3)
    problem = sprintf('png image %d decodes to %s; the header says [%d %d %d]', k - 1, ...
                      mat2str(size(image)), shape(1), shape(2), shape(3));
    return;
  end
  images{k} = image;
end
end

function image = decode_png(frame, channels)
% One PNG file (uint8 bytes) decoded with imread through a temporary file; uint8 [H, W, C].
file = [tempname(), '.png'];
fid = fopen(file, 'w');
fwrite(fid, frame, 'uint8');
fclose(fid);
try
  image = imread(file, 'png');
catch err
  delete(file);
  rethrow(err);
end
delete(file);
if islogical(image)  % GraphicsMagick reads an image of only 0 and 255 as bilevel
  image = uint8(image) * 255;
end
if channels == 3 && size(image, 3) == 1  % an RGB file whose pixels are all grey
  image = repmat(image, [1, 1, 3]);
end
if ~isa(image, 'uint8')
  error('decoded to %s, not 8-bit', class(image));
end
end

function [ok, why] = png_works()
% Whether this installation decodes PNG exactly: a 3x2 RGB PNG written by another library.
png = uint8([137 80 78 71 13 10 26 10 0 0 0 13 73 72 68 82 0 0 0 2 0 0 0 3 8 2 0 0 0 54 136 73 214 0 0 0 ...
             29 73 68 65 84 120 218 99 96 104 248 47 168 100 204 112 34 197 232 63 3 35 3 103 242 113 7 5 ...
             1 0 67 14 5 231 41 137 199 71 0 0 0 0 73 69 78 68 174 66 96 130]);
expected = uint8(cat(3, [0 17; 200 255; 9 64], [128 34; 100 0; 99 32], [255 51; 50 1; 199 16]));
why = '';
try
  ok = isempty(png_header_problem(png, [3, 2, 3], 0)) && isequal(decode_png(png, 3), expected);
  if ~ok, why = '; png off: imread decodes a test PNG wrongly'; end
catch err
  ok = false;
  why = sprintf('; png off: imread cannot decode PNG (%s)', strtok(err.message, sprintf('\n')));
end
end

function n = MAX_MESSAGE()
n = 256 * 2^20;  % max_message_bytes: the decoded images of one request, and all its frames
end

function [code, message] = in_range(v, name, low, high)
code = ''; message = '';
if ~isnumeric(v) || ~isscalar(v) || v ~= floor(v) || v < low
  code = 'bad-message'; message = sprintf('%s must be an integer %d..%d', name, low, high);
elseif v > high
  code = 'too-large'; message = sprintf('%s %d is above %d', name, v, high);
end
end

function problem = strict_json_problem(text)
% What jsondecode lets through but strict JSON forbids: NaN/Infinity literals, duplicate keys.
problem = '';
keys = regexp(text, '"((?:[^"\\]|\\.)*)"\s*:', 'tokens');
keys = cellfun(@(t) t{1}, keys, 'UniformOutput', false);
if numel(unique(keys)) < numel(keys)
  problem = 'duplicate key in frame 0'; return;
end
bare = regexprep(text, '"(?:[^"\\]|\\.)*"', '""');
bare = regexprep(bare, '-?\d+(\.\d+)?([eE][+-]?\d+)?', '0');
words = regexp(bare, '[A-Za-z]+', 'match');
if ~all(ismember(words, {'true', 'false', 'null'}))
  problem = 'frame 0 has a non-standard literal (NaN, Infinity?)';
end
end

function ok = is_id(v)
ok = ischar(v) && ~isempty(regexp(v, '^[A-Za-z0-9_.:\-]{1,64}$', 'once'));
end

function text = payload(h)
% What a resend under the same request id must repeat (docs/protocol.md §5).
ids = h.image_ids;
if ischar(ids), ids = {ids}; end
text = encode(struct('image_ids', {ids}, 'encoding', h.encoding, 'dtype', h.dtype, ...
                     'shape', {num2cell(reshape(h.shape, 1, []))}, 'repeats', h.repeats, ...
                     'probe', isfield(h, 'probe') && h.probe));
end

function m = pong(rid, state, progress)
m = struct('type', 'pong', 'request_id', rid, 'state', state, 'progress', progress);
end

function m = refusal(rid, code, message)
m = struct('type', 'error', 'request_id', rid, 'code', code, 'message', message);
end

function reply(state, envelope, message)
rig_socket('send', state.sock, [envelope, {bytes_of(encode(message))}]);
end

function text = encode(message)
% Compact JSON with "protocol" first; NaN is written as null by jsonencode.
text = jsonencode(message);
text = ['{"protocol":"xdream-rig/1",', text(2:end)];
end

function [cache, partial, trials, requests] = load_cache(file)
% The answered requests (request id -> {payload, result text, records}), the trials of requests a
% crash interrupted (request id -> records), the number of the next trial (one more than the
% highest trial_id recorded) and the payload of every request begun (request id -> payload).
cache = containers.Map();
partial = containers.Map();
trials = 0;
requests = containers.Map();
if isempty(file) || ~exist(file, 'file'), return; end
text = fileread(file);
lines = strsplit(text, sprintf('\n'));
if ~isempty(text) && text(end) ~= sprintf('\n')  % a crash tore the last line: the next one starts a line of its own
  f = fopen(file, 'a');
  fprintf(f, '\n');
  fclose(f);
end
for k = 1:numel(lines)
  parts = strsplit(lines{k}, sprintf('\t'));
  if numel(parts) == 3 && strcmp(parts{2}, 'trial')
    try
      r = jsondecode(parts{3});
    catch
      continue;  % the torn last line of a crash
    end
    if isfield(r, 'protocol'), r = rmfield(r, 'protocol'); end  % written by encode()
    % the doubles again from their text: jsondecode reads about one in six a unit in the last place off
    % (jsonencode writes them exactly), and a result rebuilt from these trials must be the one first sent
    onset = regexp(parts{3}, '"onset":([^,}]+)', 'tokens', 'once');
    values = regexp(parts{3}, '"values":\[([^\]]*)\]', 'tokens', 'once');
    r.onset = str2double(onset{1});
    r.values = num2cell(str2double(strsplit(values{1}, ',')));
    trials = max(trials, r.trial_id + 1);
    if ~isKey(partial, parts{1}), partial(parts{1}) = {}; end
    partial(parts{1}) = [partial(parts{1}), {r}];
  elseif numel(parts) == 3 && strcmp(parts{2}, 'request')
    try
      jsondecode(parts{3});
      requests(parts{1}) = parts{3};
    catch
      continue;  % torn by a crash
    end
  elseif numel(parts) == 3
    try
      result = jsondecode(parts{3});
    catch
      continue;  % a result torn by a crash: the request is not answered, its resend continues it
    end
    cache(parts{1}) = {parts{2}, parts{3}, numel(result.records)};
  end
end
end

function text = text_of(frame)
if exist('OCTAVE_VERSION', 'builtin'), text = char(frame); else, text = native2unicode(frame, 'UTF-8'); end
end

function b = bytes_of(text)
if exist('OCTAVE_VERSION', 'builtin'), b = uint8(text); else, b = unicode2native(text, 'UTF-8'); end
end

function flush_output()
if exist('OCTAVE_VERSION', 'builtin'), fflush(stdout); end
end
