classdef MLTrialRecordStandIn < handle
  % The fields of MonkeyLogic 2's TrialRecord (a handle object) that xdream_userloop.m and its
  % response source read or write; ml_driver.m updates them after each trial as MonkeyLogic does.
  properties
    CurrentTrialNumber = 0;
    TrialErrors = [];
    User = struct();
  end
end
