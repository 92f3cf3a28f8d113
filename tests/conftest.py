"""Shared test fixtures. The Who&When data lives beside the repo, in ../shared."""

from pathlib import Path

import pytest

#: The Who&When benchmark copy, read in place (never copied into the project).
WHO_AND_WHEN = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "who_and_when"


@pytest.fixture(scope="session")
def who_and_when() -> Path:
    """Path to the Who&When folder (``Algorithm-Generated/``, ``Hand-Crafted/``); skips when absent."""
    if not (WHO_AND_WHEN / "Algorithm-Generated").is_dir() or not (WHO_AND_WHEN / "Hand-Crafted").is_dir():
        pytest.skip(f"Who&When data not found at {WHO_AND_WHEN} (expected ../shared/datasets/who_and_when beside the repo)")
    return WHO_AND_WHEN


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path]:
    """(policy, reference) folders of a tiny random Llama pair with a locally trained tokenizer."""
    from attribution.tiny import build_tiny_pair

    return build_tiny_pair(tmp_path_factory.mktemp("tiny-pair"), max_positions=1024)
