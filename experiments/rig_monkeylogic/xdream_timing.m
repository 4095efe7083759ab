% XDREAM_TIMING  MonkeyLogic 2 timing script (runtime v1 functions) for xdream_userloop.m:
% TaskObject 1 is the fixation point, 2..n+1 the trial's images (n = TrialRecord.User.xdream_images).
% The subject acquires and holds fixation; each image is shown for on_ms with eventmarker
% 20+k at its onset (your photodiode and acquisition system see the same moment), then off_ms
% of blank; a fixation break anywhere aborts the trial (trialerror 3; no fixation: 4), and the
% userloop shows the trial's images again later in the same request.
% Not run by xdream's tests: it needs MonkeyLogic itself (see README.md).
fixation_point = 1;
n = TrialRecord.User.xdream_images;
on_ms = 100; off_ms = 200;                 % presentation and blank per image
wait_for_fix = 5000; initial_fix = 300; fix_radius = 2;   % ms, ms, degrees

toggleobject(fixation_point, 'eventmarker', 10);
ontarget = eyejoytrack('acquirefix', fixation_point, fix_radius, wait_for_fix);
if ~ontarget
  toggleobject(fixation_point, 'status', 'off'); trialerror(4); return;
end
ontarget = eyejoytrack('holdfix', fixation_point, fix_radius, initial_fix);
if ~ontarget
  toggleobject(fixation_point, 'status', 'off'); trialerror(3); return;
end
for k = 1:n
  toggleobject(1 + k, 'eventmarker', 20 + k, 'status', 'on');
  ontarget = eyejoytrack('holdfix', fixation_point, fix_radius, on_ms);
  toggleobject(1 + k, 'eventmarker', 40 + k, 'status', 'off');
  if ontarget
    ontarget = eyejoytrack('holdfix', fixation_point, fix_radius, off_ms);
  end
  if ~ontarget
    toggleobject(fixation_point, 'status', 'off'); trialerror(3); return;
  end
end
toggleobject(fixation_point, 'status', 'off');
goodmonkey(100, 'juiceline', 1, 'numreward', 1);
trialerror(0);
