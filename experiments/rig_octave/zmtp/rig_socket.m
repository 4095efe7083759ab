function out = rig_socket(action, varargin)
% RIG_SOCKET  Adapter: rig.m over the MATLAB-language ZeroMQ link of experiments/rig_matlab
% (zmtp_socket.m: ZMTP 3.1 over Octave's instrument-control or MATLAB's own TCP socket), in
% place of ../rig_socket.m and its compiled binding. Put this folder first on the path:
%
%   octave-cli --eval "addpath('experiments/rig_octave'); addpath('experiments/rig_octave/zmtp'); rig('tcp://127.0.0.1:5555', 'cache.tsv')"
%   ... rig('>tcp://XDREAM-PC:5555', 'cache.tsv')   % dial out to an xdream that binds
%
% Same actions and values as ../rig_socket.m: 'open', 'recv', 'send', 'endpoint', 'close'.
if strcmp(action, 'open') && isempty(which('zmtp_socket'))
  addpath(fullfile(fileparts(mfilename('fullpath')), '..', '..', 'rig_matlab'));
end
if nargout > 0
  out = zmtp_socket(action, varargin{:});
else
  zmtp_socket(action, varargin{:});
end
end
