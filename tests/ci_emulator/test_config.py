"""EmulatorConfig: both credential forms, and refusal of settings that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_emulator.config import BucketConfig, Credential, EmulatorConfig


def test_plain_and_temporary_credentials(tmp_path: Path) -> None:
    config = EmulatorConfig(
        buckets=(BucketConfig("b-1250000000", "ap-guangzhou", tmp_path),),
        credentials={"AKIDplain": "key", "AKIDtemp": Credential("key2", token="t")},
    )
    assert config.credential("AKIDplain") == Credential("key")
    assert config.credential("AKIDtemp") == Credential("key2", token="t")
    assert config.credential("AKIDnone") is None
    assert config.bucket("b-1250000000") is not None
    assert config.bucket("other-1250000000") is None


@pytest.mark.parametrize(
    "changes",
    [{"max_body_bytes": 0}, {"queue_max_concurrent": 0}, {"max_clock_skew_s": -1}],
)
def test_impossible_limits_are_refused(tmp_path: Path, changes: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(
            buckets=(BucketConfig("b-1250000000", "ap-guangzhou", tmp_path),),
            credentials={},
            **changes,  # type: ignore[arg-type]
        )


def test_a_bucket_may_be_configured_once(tmp_path: Path) -> None:
    bucket = BucketConfig("b-1250000000", "ap-guangzhou", tmp_path)
    with pytest.raises(ValueError):
        EmulatorConfig(buckets=(bucket, bucket), credentials={})


def test_the_package_exports_its_public_api() -> None:
    import ci_emulator as package

    for name in package.__all__:
        assert getattr(package, name) is not None
    assert {"start_emulator", "RunningEmulator", "EmulatorConfig", "BucketConfig"} <= set(
        package.__all__
    )
