function values = xdream_source_standin(trial)
% XDREAM_SOURCE_STANDIN  A stand-in response source: one row per image of a correct trial,
% one column per channel. It reads each image file the trial showed and answers the mean
% brightness of its centre (the neuron of experiments/rig_octave). A lab replaces it with its
% acquisition: e.g. ask a firing-rate server (Intan RHX through its TCP port) for each image's
% spike count in the response window after its onset marker (TrialRecord.LastTrialCodes), or
% run rigkit (Python) beside MonkeyLogic.
%
% trial: .trial_number, .image_ids, .files (the PNG files shown, in order), .TrialRecord
values = zeros(numel(trial.files), 1);
for k = 1:numel(trial.files)
  image = imread(trial.files{k});
  if islogical(image), image = uint8(image) * 255; end  % GraphicsMagick reads black/white images as logical
  [h, w, ~] = size(image);
  centre = image(floor(h / 4) + 1:floor(3 * h / 4), floor(w / 4) + 1:floor(3 * w / 4), :);
  values(k) = mean(double(centre(:)));
end
end
