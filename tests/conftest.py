import pytest

from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig


@pytest.fixture(scope="session")
def small_model():
    """The default random model (2 layers x 4 heads x 64), built once per test session."""
    return random_model(EncoderConfig(), seed=0)
