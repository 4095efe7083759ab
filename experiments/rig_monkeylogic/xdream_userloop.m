function [C, timingfile, userdefined_trialholder] = xdream_userloop(MLConfig, TrialRecord)
% XDREAM_USERLOOP  A NIMH MonkeyLogic 2 userloop that runs xdream's generations as trials.
%
% MonkeyLogic calls a userloop twice before the first trial (the first call only collects the
% timing file names) and then once before every trial, with TrialRecord updated by the trial
% that ended (TrialErrors(end): 0 = correct, anything else = aborted, e.g. 3 = fixation break).
% This one:
%   - takes each `present` request from xdream (xdream_requests.m, over the MATLAB-language
%     ZeroMQ link: no compiled binding), writes its images to PNG files and makes a queue of
%     every (image, repeat) in a shuffled order;
%   - gives MonkeyLogic trials of up to cfg.images_per_trial images: C is a fixation point and
%     one pic() TaskObject per image, shown in turn by xdream_timing.m;
%   - after a correct trial asks the response source (cfg.source, a function the lab writes:
%     spike counts from its acquisition system) for one value per image and channel and
%     records them; for a content-probe request ("probe": true, docs/protocol.md §4.5, sent by
%     `xdream rig check`) the trials run the same way but the values are the probe's, computed
%     from the pixels received (xdream_requests('probe', ...)); the images of an aborted trial go back into the queue at a random place
%     later in the same request, up to cfg.max_attempts shows each, after which the record
%     says valid = false (docs/protocol.md §4.2: one record per (image, repeat), the first counts);
%   - answers the request with its trial records once the queue is empty or its deadline (from
%     the request's receipt) has passed (complete = false): at the first trial boundary after
%     it, since a trial in progress is not cut, and before the first trial when decoding and
%     writing the images took longer; answers pings between trials.
% Settings come from xdream_config.m (a lab's copy first on the path wins).
C = [];
timingfile = 'xdream_timing.m';
userdefined_trialholder = '';
persistent S
if isempty(S)  % the first call: MonkeyLogic only collects the timing file names
  S = start(xdream_config());
  return;
end
if S.in_trial
  S = finish_trial(S, TrialRecord);
  S.in_trial = false;
end
while true  % between requests: wait for the next one (answering hello and pings)
  if ~isempty(S.job) && (isempty(S.queue) || toc(S.started) > S.deadline)
    send_result(S);  % also before the first trial, when decoding and writing the images took the deadline
    S.job = [];
  end
  if ~isempty(S.job), break; end
  job = xdream_requests('poll', S.link, 200, S.progress);
  if ~isempty(job), S = begin_request(S, job); end
end
xdream_requests('poll', S.link, 0, S.progress);  % pings and resends between trials
[S.trial, S.queue] = next_trial(S.queue, S.cfg.images_per_trial);
n = numel(S.trial);
C = {'fix(0,0)'};
for k = 1:n
  C{end + 1} = sprintf('pic(%s,0,0)', S.files{S.trial(k).image}); %#ok<AGROW>
end
TrialRecord.User.xdream_images = n;  % read by xdream_timing.m
TrialRecord.User.xdream_ids = arrayfun(@(s) S.ids{s.image}, S.trial, 'UniformOutput', false);
S.in_trial = true;
S.trial_number = TrialRecord.CurrentTrialNumber + 1;
end

function [trial, queue] = next_trial(queue, n)
% The first N slots of the queue that show N different images (another repeat of an image
% already in the trial waits for a later trial).
taken = false(1, numel(queue));
images = [];
for k = 1:numel(queue)
  if numel(images) == n, break; end
  if ~any(images == queue(k).image)
    taken(k) = true;
    images(end + 1) = queue(k).image; %#ok<AGROW>
  end
end
trial = queue(taken);
queue = queue(~taken);
end

function S = start(cfg)
S.cfg = cfg;
S.link = xdream_requests('open', cfg.endpoint, cfg.channels);
S.job = []; S.queue = []; S.trial = []; S.in_trial = false; S.progress = 0;
if ~exist(cfg.image_dir, 'dir'), mkdir(cfg.image_dir); end
fprintf('xdream userloop: serving xdream-rig/1 at %s, %d images per trial\n', cfg.endpoint, cfg.images_per_trial);
end

function S = begin_request(S, job)
h = job.header;
S.job = job; S.ids = job.image_ids; S.started = job.received; S.progress = 0;  % deadline from receipt (§6)
S.probe = isfield(h, 'probe') && h.probe; S.images = job.images;
S.deadline = 600;
if isfield(h, 'deadline_ms'), S.deadline = h.deadline_ms / 1000; end
S.files = cell(1, numel(S.ids));
for k = 1:numel(S.ids)  % MonkeyLogic's pic() reads image files
  S.files{k} = fullfile(S.cfg.image_dir, [S.ids{k}, '.png']);
  imwrite(job.images{k}, S.files{k});
end
[images, repeats] = ndgrid(1:numel(S.ids), 0:h.repeats - 1);
slots = struct('image', num2cell(images(:)'), 'repeat', num2cell(repeats(:)'), 'shows', 0);
S.queue = slots(randperm(numel(slots)));
S.records = {};
S.failed = struct('image', {}, 'repeat', {}, 'shows', {});
end

function S_out = finish_trial(S, TrialRecord)
% Record the trial that ended, or re-queue its images.
S_out = S;
err = TrialRecord.TrialErrors(end);
trial = S.trial;
if err == 0
  info = struct('trial_number', S.trial_number, 'image_ids', {arrayfun(@(s) S.ids{s.image}, trial, 'UniformOutput', false)}, ...
                'files', {arrayfun(@(s) S.files{s.image}, trial, 'UniformOutput', false)}, 'TrialRecord', TrialRecord);
  if S.probe  % the content probe (docs/protocol.md §4.5): values from the pixels received
    values = cell2mat(arrayfun(@(k) xdream_requests('probe', S.images{k}, numel(S.cfg.channels)), ...
                               reshape([trial.image], [], 1), 'UniformOutput', false));
  else
    values = S.cfg.source(info);
  end
  for k = 1:numel(trial)
    S_out.records{end + 1} = record(S, trial(k), S.trial_number, num2cell(values(k, :)), true);
  end
  S_out.progress = S.progress + numel(trial);
else
  for k = 1:numel(trial)
    slot = trial(k);
    slot.shows = slot.shows + 1;
    if slot.shows >= S.cfg.max_attempts
      S_out.records{end + 1} = record(S, slot, S.trial_number, num2cell(nan(1, numel(S.cfg.channels))), false);
    else
      at = randi(numel(S_out.queue) + 1);  % a random place in what is left of the request
      S_out.queue = [S_out.queue(1:at - 1), slot, S_out.queue(at:end)];
    end
  end
end
end

function r = record(S, slot, trial_number, values, valid)
r = struct('image_id', S.ids{slot.image}, 'repeat', slot.repeat, 'trial_id', trial_number, ...
           'onset', NaN, 'values', {values}, 'valid', valid);
end

function send_result(S)
complete = isempty(S.queue);  % else the deadline passed: what was never shown has no record
xdream_requests('result', S.link, S.job, S.records, complete);
end
