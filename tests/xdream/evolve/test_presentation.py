"""One generation's presentation: evolved and reference images in one batch, image ids, and
the reshow policy (only unscored evolved images, at most the allowed number of times).

The responder here is a scripted one that scores each image by its mean pixel and leaves
given image ids unscored in given calls, the way a rig's partial replies do; the same policy
over a real rig link is tested in tests/responders/test_zmq_rig.py."""

import numpy as np
import pytest
import torch

from xdream.core import registry
from xdream.evolve.presentation import image_ids, present
from xdream.core.responder import NoisyResponder, Responder


class ScriptedRig(Responder):
    """Score = 100 x mean pixel; call ``k`` leaves the ids in ``unscored[k]`` NaN."""

    name = "scripted"

    def __init__(self, unscored=(), always=()):
        self.unscored, self.always, self.calls, self.ids = list(unscored), set(always), [], None

    def prepare(self, run_dir, generation, image_ids=None):
        self.ids = image_ids

    def respond(self, images):
        drop = (self.unscored[len(self.calls)] if len(self.calls) < len(self.unscored) else set()) | self.always
        self.calls.append(list(self.ids))
        scores = images.mean(dim=(1, 2, 3)).double().numpy() * 100
        return np.where([i in drop for i in self.ids], np.nan, scores)


def truth(images):
    return images.mean(dim=(1, 2, 3)).double().numpy() * 100


@pytest.fixture
def images():
    return torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def references():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_ids_name_evolved_then_reference_images():
    assert image_ids(7, 3, np.array([5, 0])) == ["g7-0", "g7-1", "g7-2", "g7-ref5", "g7-ref0"]


def test_nan_policy_shows_each_image_once_and_splits_the_scores(tmp_path, images, references):
    rig = ScriptedRig(unscored=[{"g3-1", "g3-ref9"}])
    shown = present(rig, images, run_dir=tmp_path, generation=3, reference_images=references,
                    reference_index=[4, 9])
    assert rig.calls == [["g3-0", "g3-1", "g3-2", "g3-3", "g3-ref4", "g3-ref9"]]  # one batch
    expected = truth(images)
    expected[1] = np.nan
    np.testing.assert_array_equal(shown.scores, expected)
    np.testing.assert_array_equal(shown.reference_scores, [truth(references)[0], np.nan])
    assert shown.shown.tolist() == [1, 1, 1, 1] and shown.presented == 6 and shown.reshown == 0


def test_reshow_shows_only_unscored_evolved_images_until_they_score(tmp_path, images, references):
    rig = ScriptedRig(unscored=[{"g0-1", "g0-3", "g0-ref0"}, {"g0-3"}])
    shown = present(rig, images, run_dir=tmp_path, generation=0, reference_images=references,
                    reference_index=[0, 1], reshow_attempts=3)
    assert rig.calls == [["g0-0", "g0-1", "g0-2", "g0-3", "g0-ref0", "g0-ref1"], ["g0-1", "g0-3"], ["g0-3"]]
    np.testing.assert_array_equal(shown.scores, truth(images))  # every score is its own image's
    assert np.isnan(shown.reference_scores[0])  # reference images are never re-shown
    assert shown.shown.tolist() == [1, 2, 1, 3] and shown.presented == 6 + 2 + 1 and shown.reshown == 3


def test_reshow_gives_up_after_the_allowed_attempts(tmp_path, images):
    rig = ScriptedRig(always={"g2-2"})
    shown = present(rig, images, run_dir=tmp_path, generation=2, reshow_attempts=2)
    assert rig.calls == [["g2-0", "g2-1", "g2-2", "g2-3"], ["g2-2"], ["g2-2"]]
    assert np.isnan(shown.scores[2]) and np.isfinite(np.delete(shown.scores, 2)).all()
    assert shown.shown.tolist() == [1, 1, 3, 1] and len(shown.reference_scores) == 0


def test_noise_free_scores_follow_the_reshown_images(tmp_path, images, references):
    noise = registry.create("noise", "gaussian", {"level": 0.3})
    responder = NoisyResponder(ScriptedRig(unscored=[{"g1-0", "g1-2"}]), noise, np.random.default_rng(0))
    shown = present(responder, images, run_dir=tmp_path, generation=1, reference_images=references,
                    reference_index=[3, 4], reshow_attempts=1)
    np.testing.assert_allclose(shown.clean, truth(images))
    np.testing.assert_allclose(shown.reference_clean, truth(references))
    assert np.isfinite(shown.scores).all() and not np.allclose(shown.scores, shown.clean)


def test_a_responder_returning_the_wrong_number_of_scores_is_an_error(tmp_path, images):
    class Short(ScriptedRig):
        def respond(self, images):
            return super().respond(images)[:-1]

    with pytest.raises(ValueError, match="returned 3 scores for 4 images"):
        present(Short(), images, run_dir=tmp_path, generation=0)
