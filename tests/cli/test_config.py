"""Profiles file: where it lives, what it holds, who may read it, which setting wins."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from vps.cli.user import config

TRICKY = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode é ✓'


def test_path_prefers_vps_config_then_xdg_then_home(tmp_path: Path) -> None:
    explicit = tmp_path / "mine.toml"
    assert config.config_path({"VPS_CONFIG": str(explicit), "XDG_CONFIG_HOME": "/x"}) == explicit
    assert config.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "vps" / "config.toml"
    )
    assert config.config_path({}) == Path("~/.config/vps/config.toml").expanduser()


def test_round_trip_keeps_every_character_and_the_active_profile(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "config.toml"
    written = config.ConfigFile(
        path,
        {
            TRICKY: config.Profile(TRICKY, "http://example.test:1/", TRICKY),
            "plain": config.Profile("plain", "http://127.0.0.1:8000"),
        },
        active=TRICKY,
    )
    config.save(written)
    # A standard TOML reader agrees with ours.
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document["profiles"][TRICKY]["token"] == TRICKY
    assert "token" not in document["profiles"]["plain"]
    read = config.load(path)
    assert read.active == TRICKY
    assert read.profiles == written.profiles


def test_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    import os

    path = tmp_path / "config.toml"
    path.write_text("# world readable before\n")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        config.save(config.ConfigFile(path, {"p": config.Profile("p", "http://h", "secret")}))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left


def test_missing_file_is_empty_and_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    assert config.load(tmp_path / "absent.toml").profiles == {}
    broken = tmp_path / "broken.toml"
    broken.write_text("[profiles.x\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(broken)


def _two_profiles(tmp_path: Path) -> config.ConfigFile:
    return config.ConfigFile(
        tmp_path / "c.toml",
        {
            "work": config.Profile("work", "http://work.test", "work-token"),
            "home": config.Profile("home", "http://home.test/", "home-token"),
        },
        active="work",
    )


def test_resolution_order_flag_then_environment_then_profile_then_default(
    tmp_path: Path,
) -> None:
    settings = _two_profiles(tmp_path)
    # The active profile alone.
    assert config.resolve(settings, environ={}) == config.Connection(
        "http://work.test", "work-token", "work"
    )
    # VPS_PROFILE beats the active profile; --profile beats VPS_PROFILE.
    assert config.resolve(settings, environ={"VPS_PROFILE": "home"}).token == "home-token"
    chosen = config.resolve(settings, profile="work", environ={"VPS_PROFILE": "home"})
    assert chosen.profile == "work"
    # The environment beats the profile's values; flags beat the environment.
    environ = {"VPS_API_URL": "http://env.test", "VPS_TOKEN": "env-token"}
    assert config.resolve(settings, environ=environ) == config.Connection(
        "http://env.test", "env-token", "work"
    )
    assert config.resolve(
        settings, api_url="http://flag.test/", token="flag-token", environ=environ
    ) == config.Connection("http://flag.test", "flag-token", "work")
    # Nothing anywhere: the default URL, no token.
    empty = config.ConfigFile(tmp_path / "none.toml")
    assert config.resolve(empty, environ={}) == config.Connection(
        config.DEFAULT_API_URL, None, "default"
    )


def test_a_profile_named_explicitly_must_exist(tmp_path: Path) -> None:
    settings = _two_profiles(tmp_path)
    with pytest.raises(config.ConfigError, match=r"no profile named 'nope'.*home, work"):
        config.resolve(settings, profile="nope", environ={})
    with pytest.raises(config.ConfigError, match="vps login --profile typo"):
        config.resolve(settings, environ={"VPS_PROFILE": "typo"})
