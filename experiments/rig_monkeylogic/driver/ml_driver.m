function ml_driver(log_file, aborted, max_trials)
% ML_DRIVER  Calls xdream_userloop.m the way NIMH MonkeyLogic 2 does, for tests without
% MonkeyLogic: twice before the first trial (the first call only collects the timing file
% name), then once after every trial with TrialRecord updated (CurrentTrialNumber,
% TrialErrors(end)). A "trial" here checks the TaskObjects the userloop returned (a fixation
% point, then one pic() per image, whose file must exist) and ends with trial error 0, or with
% the error that ABORTED gives it (a map: trial number -> error code, e.g. 3 = fixation break,
% 4 = no fixation). Each trial is logged to LOG_FILE: number, error, image ids shown.
if nargin < 3, max_trials = inf; end
TrialRecord = MLTrialRecordStandIn();
MLConfig = struct();
[C, timingfile] = xdream_userloop(MLConfig, TrialRecord);
assert(isempty(C) && strcmp(timingfile, 'xdream_timing.m'), 'the first call returns the timing file only');
log = fopen(log_file, 'a');
trial = 0;
while trial < max_trials
  [C, timingfile] = xdream_userloop(MLConfig, TrialRecord);
  trial = trial + 1;
  assert(strcmp(timingfile, 'xdream_timing.m') && strcmp(C{1}, 'fix(0,0)'), 'TaskObject 1 is the fixation point');
  n = TrialRecord.User.xdream_images;
  assert(numel(C) == n + 1 && n >= 1, 'one pic() per image');
  for k = 2:numel(C)
    file = regexp(C{k}, '^pic\((.+),0,0\)$', 'tokens', 'once');
    assert(~isempty(file) && exist(file{1}, 'file') == 2, 'pic() names an image file that exists');
  end
  err = 0;
  if isKey(aborted, trial), err = aborted(trial); end
  TrialRecord.CurrentTrialNumber = trial;
  TrialRecord.TrialErrors(end + 1) = err;
  fprintf(log, '%d\t%d\t%s\n', trial, err, strjoin(TrialRecord.User.xdream_ids, ','));
  fflush(log);
end
fclose(log);
end
