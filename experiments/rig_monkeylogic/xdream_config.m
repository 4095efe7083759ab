function cfg = xdream_config()
% XDREAM_CONFIG  The lab's settings for xdream_userloop.m: copy this file next to your task
% and edit it (the copy first on the MATLAB path wins).
cfg.endpoint = 'tcp://0.0.0.0:5555';      % bind here; '>tcp://XDREAM-PC:5555' dials out to an xdream run with responder.bind = true
cfg.channels = {'ch0'};                   % the response channels; xdream scores their mean (or those it is told)
cfg.images_per_trial = 4;                 % images shown in one fixation trial
cfg.max_attempts = 3;                     % shows of one (image, repeat) before its record stays invalid
cfg.image_dir = fullfile(tempdir, 'xdream_images');  % where the request's images are written for pic()
cfg.source = @xdream_source_standin;      % one value per shown image and channel: replace with your acquisition
end
