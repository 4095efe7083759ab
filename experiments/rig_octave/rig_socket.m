function out = rig_socket(action, varargin)
% RIG_SOCKET  The only place the rig touches ZeroMQ: a ROUTER socket that receives and sends
% multipart messages as cell arrays of uint8 row vectors.
%
%   sock   = rig_socket('open', endpoint)        bind a ROUTER socket
%   frames = rig_socket('recv', sock, wait_ms)   next message ({} after wait_ms of silence)
%   rig_socket('send', sock, frames)             send a multipart message
%   ep     = rig_socket('endpoint', sock)        the bound endpoint (a port of * resolved)
%   rig_socket('close', sock)
%
% GNU Octave: the 'zeromq' package (Debian: octave-zeromq; pkg load zeromq).
% MATLAB: the matlab-zmq MEX binding (github.com/fagg/matlab-zmq, its zmq.core.* functions);
% that branch follows matlab-zmq's documented API and is not tested by xdream's suite.
MAX_FRAME = 16 * 2^20;  % a frame of more bytes than this is refused as too-large
octave = exist('OCTAVE_VERSION', 'builtin') ~= 0;
switch action
  case 'open'
    if octave
      pkg('load', 'zeromq');
      out = zmq_socket(ZMQ_ROUTER);
      zmq_bind(out, varargin{1});
    else
      context = zmq.core.ctx_new();
      out = struct('context', context, 'socket', zmq.core.socket(context, 'ZMQ_ROUTER'));
      zmq.core.bind(out.socket, varargin{1});
    end
  case 'recv'
    [sock, wait_ms] = varargin{:};
    out = {};
    if octave
      if ~zmq_poll(sock, wait_ms)
        return;
      end
      out{1} = zmq_recv(sock, MAX_FRAME + 1);
      while zmq_getsockopt(sock, ZMQ_RCVMORE)
        out{end + 1} = zmq_recv(sock, MAX_FRAME + 1);
      end
    else
      zmq.core.setsockopt(sock.socket, 'ZMQ_RCVTIMEO', max(wait_ms, 0));
      try
        out{1} = zmq.core.recv(sock.socket, MAX_FRAME + 1);
      catch
        return;  % EAGAIN: nothing within wait_ms
      end
      while zmq.core.getsockopt(sock.socket, 'ZMQ_RCVMORE')
        out{end + 1} = zmq.core.recv(sock.socket, MAX_FRAME + 1);
      end
    end
    for k = 1:numel(out)
      out{k} = reshape(uint8(out{k}), 1, []);
    end
  case 'send'
    [sock, frames] = varargin{:};
    for k = 1:numel(frames)
      more = k < numel(frames);
      if octave
        if more, zmq_send(sock, frames{k}, ZMQ_SNDMORE); else, zmq_send(sock, frames{k}); end
      else
        if more, zmq.core.send(sock.socket, frames{k}, 'ZMQ_SNDMORE'); else, zmq.core.send(sock.socket, frames{k}); end
      end
    end
  case 'endpoint'
    if octave
      out = zmq_getsockopt(varargin{1}, ZMQ_LAST_ENDPOINT);
    else
      out = zmq.core.getsockopt(varargin{1}.socket, 'ZMQ_LAST_ENDPOINT');
    end
    out = char(reshape(out, 1, []));
    out = out(out ~= 0);
  case 'close'
    if octave
      zmq_close(varargin{1});
    else
      zmq.core.close(varargin{1}.socket);
      zmq.core.ctx_shutdown(varargin{1}.context);
    end
  otherwise
    error('rig_socket: unknown action %s', action);
end
end
