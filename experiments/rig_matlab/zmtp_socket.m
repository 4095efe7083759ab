function out = zmtp_socket(action, varargin)
% ZMTP_SOCKET  A ZeroMQ ROUTER socket written in the MATLAB language: the ZeroMQ wire protocol
% ZMTP 3.1 (rfc.zeromq.org/spec/37, which extends spec/23: ZMTP 3.0) with the NULL security
% mechanism, over the language's own TCP socket: no compiled ZeroMQ binding. It talks to any
% libzmq DEALER or REQ peer, e.g. xdream's `zmq` responder and `xdream rig check`.
%
%   sock   = zmtp_socket('open', endpoint)        endpoint 'tcp://HOST:PORT' (or '@tcp://...'):
%                                                 bind and wait for the client to connect;
%                                                 '>tcp://HOST:PORT': dial out to a client that
%                                                 binds (CZMQ's @/> convention), redialled
%                                                 whenever the connection drops
%   frames = zmtp_socket('recv', sock, wait_ms)   next message {identity, frame, ...} of uint8
%                                                 rows ({} after wait_ms with none)
%   zmtp_socket('send', sock, frames)             {identity, frame, ...}; dropped, as a ROUTER
%                                                 does, when that peer is gone
%   ep     = zmtp_socket('endpoint', sock)        the endpoint given to 'open'
%   zmtp_socket('close', sock)
%
% One peer at a time: a bound link serves the client that connected and takes the next
% connection when that one has closed (xdream opens one connection at a time; a client that
% reconnects closes its old one first). CURVE is not implemented: use it on loopback or a lab
% network, or tunnel it (see docs/rigs.md).
%
% TCP: GNU Octave's instrument-control package (>= 0.8: tcpserver, tcpclient, read, write,
% NumBytesAvailable; Debian octave-instrument-control; pkg load instrument-control), or
% MATLAB's tcpserver (R2021a+) and tcpclient (R2020b+). The state lives in a containers.Map
% (a handle), so the socket can be passed around like rig_socket's.
octave = exist('OCTAVE_VERSION', 'builtin') ~= 0;
switch action
  case 'open'
    endpoint = varargin{1};
    out = containers.Map('KeyType', 'char', 'ValueType', 'any');
    out('octave') = octave;
    if octave
      pkg('load', 'instrument-control');
    end
    dial = strncmp(endpoint, '>', 1);
    address = regexprep(endpoint, '^[@>]', '');
    parts = regexp(address, '^tcp://(.+):(\d+)$', 'tokens', 'once');
    if isempty(parts)
      error('zmtp_socket: endpoint %s is not tcp://HOST:PORT (or >tcp://HOST:PORT to dial out)', endpoint);
    end
    host = parts{1};
    if any(strcmp(host, {'*', '0.0.0.0'})), host = '0.0.0.0'; end
    out('endpoint') = endpoint; out('dial') = dial; out('host') = host; out('port') = str2double(parts{2});
    out('io') = []; out('peer') = []; out('buffer') = uint8([]); out('peers') = 0; out('next_dial') = 0;
    out('clock') = tic;
    if ~dial
      out('server') = listen(host, out('port'), octave);
    end
  case 'recv'
    [sock, wait_ms] = varargin{:};
    out = {};
    started = tic;
    while true
      if ~isempty(sock('peer')) || connect_peer(sock)
        out = receive(sock);
        if ~isempty(out), return; end
      end
      if toc(started) * 1000 >= wait_ms, return; end
      pause(0.002);
    end
  case 'send'
    [sock, frames] = varargin{:};
    if isempty(sock('peer')) || ~isequal(uint8(frames{1}(:)'), sock('peer'))
      return;  % no such peer (it disconnected): a ROUTER drops the message
    end
    if ~send_bytes(sock, encode_message(frames(2:end)))
      drop_peer(sock);
    end
  case 'endpoint'
    out = varargin{1}('endpoint');
  case 'close'
    sock = varargin{1};
    drop_peer(sock);
    if ~sock('dial'), clear_io(sock('server')); end
  otherwise
    error('zmtp_socket: unknown action %s', action);
end
end

function server = listen(host, port, octave)
% A tcpserver on HOST:PORT. Octave's does not set SO_REUSEADDR, so right after a restart the
% port is held by the last run's closed connections (TIME_WAIT, 60 s on Linux): retried for
% up to 120 s.
started = tic;
while true
  try
    if octave
      server = tcpserver(host, port, 'Timeout', 0);
    else
      server = tcpserver(host, port, 'Timeout', 10);
    end
    return;
  catch err
    if toc(started) > 120, rethrow(err); end
    if toc(started) < 1
      fprintf('zmtp_socket: port %d is busy (%s); retrying for up to 120 s\n', port, strtok(err.message, sprintf('\n')));
    end
    pause(1);
  end
end
end

function ok = connect_peer(sock)
% Take a new connection (bound: a client that connected; dialling: a fresh connection to the
% client, at most every 0.5 s) and run the ZMTP handshake on it: greeting, then READY.
ok = false;
if sock('dial')
  if toc(sock('clock')) < sock('next_dial'), return; end
  sock('next_dial') = toc(sock('clock')) + 0.5;
  try
    if sock('octave')
      io = tcpclient(sock('host'), sock('port'), 'Timeout', 10);
    else
      io = tcpclient(sock('host'), sock('port'), 'Timeout', 10, 'ConnectTimeout', 2);
    end
  catch
    return;  % nobody listens yet: try again later
  end
else
  io = sock('server');
  if ~io.Connected, return; end  % Octave accepts a waiting connection when this is read
end
sock('io') = io; sock('buffer') = uint8([]);
if ~handshake(sock)
  drop_peer(sock);
  return;
end
sock('peers') = sock('peers') + 1;
n = sock('peers');  % a 5-byte routing id as libzmq's ROUTER makes: 0, then a counter
sock('peer') = uint8([0, mod(floor(n ./ 256 .^ (3:-1:0)), 256)]);
ok = true;
end

function ok = handshake(sock)
% rfc 23 section 3: our 64-byte greeting (signature, version 3.1, mechanism NULL, as-server 0,
% filler), the peer's; then each side's READY command with its metadata. The peer must be a
% DEALER or REQ (the socket types a ROUTER talks to).
greeting = zeros(1, 64, 'uint8');
greeting([1, 10, 11, 12]) = [255, 127, 3, 1];
greeting(13:16) = uint8('NULL');
ready = [uint8(5), uint8('READY'), property('Socket-Type', 'ROUTER'), property('Identity', '')];
ok = send_bytes(sock, [greeting, frame_bytes(ready, false, true)]);
if ~ok, return; end
peer = read_exact(sock, 64);
if numel(peer) < 64 || peer(1) ~= 255 || peer(10) ~= 127 || peer(11) < 3 || ...
   ~strcmp(char(peer(13:16)), 'NULL') || any(peer(17:32))
  ok = false; return;
end
[body, is_command] = read_frame(sock);
if isempty(body) || ~is_command || body(1) ~= 5 || ~strcmp(char(body(2:6)), 'READY')
  ok = false; return;
end
socket_type = metadata(body(7:end), 'Socket-Type');
ok = any(strcmp(socket_type, {'DEALER', 'REQ'}));
end

function bytes = property(name, value)
% One metadata property of a READY command: name length (1 byte), name, value length (4 bytes,
% network order), value.
bytes = [uint8(numel(name)), uint8(name), uint8(mod(floor(numel(value) ./ 256 .^ (3:-1:0)), 256)), uint8(value)];
end

function value = metadata(bytes, wanted)
% The value of property WANTED in a READY command's metadata ('' when absent or malformed).
value = '';
k = 1;
while k < numel(bytes)
  n = double(bytes(k));
  if k + n + 4 > numel(bytes), return; end
  name = char(bytes(k + 1:k + n));
  m = double(bytes(k + n + 1:k + n + 4)) * (256 .^ (3:-1:0))';
  if k + n + 4 + m > numel(bytes), return; end
  if strcmpi(name, wanted)
    value = char(bytes(k + n + 5:k + n + 4 + m)); return;
  end
  k = k + n + 5 + m;
end
end

function frames = receive(sock)
% The next whole message from the peer as {identity, frames...}; {} when none has begun. A
% message once begun is read to its end (libzmq writes it at once); commands between messages
% are handled (PING answered with PONG, rfc 37 section 3.5) and skipped.
frames = {};
while true
  if ~bytes_waiting(sock), return; end
  body = {}; more = true;
  while more
    [bytes, is_command, more] = read_frame(sock);
    if isempty(sock('peer')), frames = {}; return; end  % the connection broke mid-message
    if is_command
      if numel(bytes) >= 5 && bytes(1) == 4 && strcmp(char(bytes(2:5)), 'PING')
        send_bytes(sock, frame_bytes([uint8(4), uint8('PONG'), bytes(8:end)], false, true));
      end
      break;
    end
    body{end + 1} = bytes; %#ok<AGROW>
  end
  if ~isempty(body)
    frames = [{sock('peer')}, body];
    return;
  end
end
end

function yes = bytes_waiting(sock)
% Whether the peer sent anything; finds a closed connection (Octave's tcpserver only notices
% one when a read meets its end, and takes the next connection only after that).
yes = false;
io = sock('io');
if ~isempty(sock('buffer')) || io.NumBytesAvailable > 0
  yes = true; return;
end
if ~sock('octave')
  if ~sock('dial') && ~io.Connected, drop_peer(sock); end
  return;
end
try
  if sock('dial')
    io.Timeout = 0;
    byte = read(io, 1);
    io.Timeout = 10;
  else
    byte = read(io, 1);  % Timeout 0: a peer's close is seen here
    write(io, uint8([]));  % fails 'Not connected' after a close
  end
catch
  drop_peer(sock); return;
end
if ~isempty(byte)
  sock('buffer') = uint8(byte(:)');
  yes = true;
end
end

function [bytes, is_command, more] = read_frame(sock)
% One frame (rfc 23 section 3.2): flags (bit 0 MORE, bit 1 LONG, bit 2 COMMAND), a size of 1
% or 8 bytes (network order), the body.
bytes = uint8([]); is_command = false; more = false;
flags = read_exact(sock, 1);
if isempty(flags), return; end
long = bitand(flags, 2) ~= 0;
is_command = bitand(flags, 4) ~= 0;
more = bitand(flags, 1) ~= 0 && ~is_command;
if long, n = read_exact(sock, 8); else, n = read_exact(sock, 1); end
if isempty(n), return; end
size = double(n) * (256 .^ (numel(n) - 1:-1:0))';
if size > 2^31
  drop_peer(sock); return;  % larger than any xdream-rig/1 message: refuse the peer
end
bytes = read_exact(sock, size);
if numel(bytes) < size, bytes = uint8([]); end
end

function bytes = read_exact(sock, n)
% N bytes from the peer (waiting up to the socket's timeout for them); the connection is
% dropped and [] returned when they do not come.
bytes = uint8([]);
if isempty(sock('io')), return; end
held = sock('buffer');
take = min(n, numel(held));
bytes = held(1:take);
sock('buffer') = held(take + 1:end);
if take == n, return; end
io = sock('io');
try
  if sock('octave') && ~sock('dial')
    io.Timeout = 10;
    rest = read(io, n - take);
    io.Timeout = 0;
  else
    rest = read(io, n - take, 'uint8');
  end
catch
  rest = [];
end
bytes = [bytes, uint8(rest(:)')];
if numel(bytes) < n
  bytes = uint8([]);
  drop_peer(sock);
end
end

function ok = send_bytes(sock, bytes)
% Write all of BYTES; false when the connection is gone.
ok = false;
io = sock('io');
if isempty(io), return; end
try
  if ~sock('octave')
    write(io, bytes, 'uint8');  % MATLAB writes all of it, or fails
    ok = true; return;
  end
  while ~isempty(bytes)  % Octave's write is one send(): it may take part of a large buffer
    sent = write(io, bytes);
    if sent <= 0, return; end
    bytes = bytes(sent + 1:end);
  end
  ok = true;
catch
end
end

function bytes = encode_message(frames)
% A multipart message: every frame but the last has the MORE flag.
parts = cell(1, numel(frames));
for k = 1:numel(frames)
  parts{k} = frame_bytes(uint8(frames{k}(:)'), k < numel(frames), false);
end
bytes = [parts{:}];
end

function bytes = frame_bytes(body, more, is_command)
n = numel(body);
flags = uint8(more) + 4 * uint8(is_command);
if n > 255
  bytes = [flags + 2, uint8(mod(floor(n ./ 256 .^ (7:-1:0)), 256)), body];
else
  bytes = [flags, uint8(n), body];
end
end

function drop_peer(sock)
% Forget the peer: a dialled connection is closed (and dialled again later); a bound server
% keeps listening and takes the next connection.
io = sock('io');
sock('peer') = []; sock('buffer') = uint8([]); sock('io') = [];
if sock('dial') && ~isempty(io), clear_io(io); end
if ~sock('dial') && sock('octave') && ~isempty(io)
  try  % reach the end of a closed connection, so Octave's tcpserver takes the next one
    io.Timeout = 0;
    read(io, 1e6);
  catch
  end
end
end

function clear_io(io)
try
  if exist('OCTAVE_VERSION', 'builtin') ~= 0, clear(io); else, delete(io); end
catch
end
end
