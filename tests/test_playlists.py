"""``edgemood playlists``: the genre plan directly, the [genres] config, and the command against MPD and Mopidy."""

from __future__ import annotations

from pathlib import Path

import pytest
from mpd_helpers import connect, mopidy, stored  # noqa: F401 (fixtures)
from needs import missing

from edgemood.cli import main
from edgemood.config import DEFAULT_GENRES, DEFAULT_PLAYLISTS, Config, config_to_toml, load_config
from edgemood.demo.services import LocalService, ServiceError, free_port
from edgemood.errors import UsageError
from edgemood.sinks.playlist_plan import (
    Action,
    genre_key,
    has_genre_tags,
    matching_genres,
    moods_by_playlist,
    plan_playlists,
)

# -- the plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [("Hip-Hop", "hip hop"), ("HipHop", "hip-hop"), ("Lo-Fi", "lofi"), ("R&B", "rb")])
def test_genre_spellings_meet(a, b):
    assert genre_key(a) == genre_key(b)


def test_genres_that_only_share_a_word_do_not_meet():
    assert genre_key("Rock") != genre_key("Post-Rock") and genre_key("Jazz") != genre_key("Smooth Jazz")


def test_moods_by_playlist_follows_the_class_order():
    assert moods_by_playlist(DEFAULT_PLAYLISTS) == {
        "calm": ["anger", "contempt", "disgust", "fear"],
        "upbeat": ["happy", "surprise"],
        "focus": ["neutral"],
        "comfort": ["sad"],
    }


def test_matching_genres_keeps_the_librarys_spelling_and_skips_untagged():
    library = ["", "ambient", "Classical ", "Rock", "Ambient"]
    assert matching_genres(library, ["Ambient", "Classical"]) == ["Ambient", "ambient", "Classical "]
    assert has_genre_tags(library) and not has_genre_tags(["", " "])


def test_default_genres_cover_every_default_playlist_once():
    assert set(DEFAULT_GENRES) == set(DEFAULT_PLAYLISTS.values())
    keys = [genre_key(g) for genres in DEFAULT_GENRES.values() for g in genres]
    assert len(keys) == len(set(keys)), "a genre in two default playlists"


PLAYLISTS = {**DEFAULT_PLAYLISTS, "sad": "rainy"}
GENRES = {**DEFAULT_GENRES}


def plan(existing, library, *, create=True, replace=False):
    return {p.name: p for p in plan_playlists(PLAYLISTS, GENRES, existing, library, create=create, replace=replace)}


def test_listing_builds_nothing():
    plans = plan({"calm": 4}, ["Ambient"], create=False)
    assert {p.action for p in plans.values()} == {Action.LIST}
    assert plans["calm"].songs == 4 and plans["focus"].songs is None


def test_create_builds_only_missing_playlists_that_have_songs():
    plans = plan({"calm": 4}, ["Ambient", "Pop", "jazz"])
    assert plans["calm"].action is Action.KEEP
    assert plans["upbeat"].action is Action.CREATE and plans["upbeat"].genres == ("Pop",)
    assert plans["focus"].action is Action.CREATE and plans["focus"].genres == ("jazz",)
    assert plans["rainy"].action is Action.NO_SONGS and plans["rainy"].wanted == ()  # no [genres] rainy


def test_replace_rebuilds_existing_playlists_but_never_empties_one():
    plans = plan({"calm": 4, "upbeat": 2}, ["Ambient"], replace=True)
    assert plans["calm"].action is Action.REPLACE
    assert plans["upbeat"].action is Action.KEEP  # no Pop, Rock, ... in the library: left as it is


# -- the [genres] and [mpd] settings -------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edgemood.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_given_genres_replace_only_their_playlist(tmp_path):
    config = load_config(write(tmp_path, '[genres]\ncalm = ["Drone", "Ambient"]\n'), {})
    assert config.genres == {**DEFAULT_GENRES, "calm": ("Drone", "Ambient")}


def test_a_playlist_of_your_own_takes_genres_by_file_and_environment(tmp_path):
    path = write(tmp_path, '[playlists]\nsad = "rainy day"\n[genres]\n"rainy day" = ["Blues"]\n')
    config = load_config(path, {"EDGEMOOD_GENRES__FOCUS": '["Post-Rock"]'})
    assert config.genres["rainy day"] == ("Blues",) and config.genres["focus"] == ("Post-Rock",)
    assert load_config(write(tmp_path, config_to_toml(config)), {}) == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[genres]\nclam = ["Ambient"]\n', '[genres] clam = ["Ambient"]: no mood plays a playlist of that name'),
        ("[genres]\ncalm = []\n", "[genres] calm = []: must be an array of strings: one or more genre names"),
        ('[genres]\ncalm = "Ambient"\n', '[genres] calm = "Ambient": must be an array of strings'),
        ('[genres]\ncalm = ["Ambient", 3]\n', "[genres] calm = [\"Ambient\", 3]: must be an array of strings"),
        ('[genres]\ncalm = ["Ambient", " "]\n', "none blank"),
        ('[genres]\ncalm = ["Amb\\u0007ient"]\n', "none blank"),
        ('[mpd]\non_absent = "stop"\n', '[mpd] on_absent = "stop": must be one of "keep", "pause"'),
        ('[mpd]\nautoplay = "yes"\n', '[mpd] autoplay = "yes": must be true or false'),
    ],
)
def test_bad_genres_and_mpd_settings_name_the_key(tmp_path, text, expected):
    with pytest.raises(UsageError) as caught:
        load_config(write(tmp_path, text), {})
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_mpd_manners_defaults():
    assert (Config().mpd.autoplay, Config().mpd.on_absent) == (True, "keep")


# -- the command against a real server -----------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> LocalService:
    """An MPD of the test's own: tagged tracks (calm Ambient, extra 'classical', upbeat Dance, focus Instrumental,
    comfort Acoustic), and of the stored playlists only ``upbeat`` and ``comfort``."""
    from edgemood.demo.services.mpd import start_mpd

    try:
        server = start_mpd(
            tmp_path / "mpd",
            {"calm": 2, "classical": 1, "upbeat": 2, "focus": 2, "comfort": 2},
            genres={"calm": "Ambient", "classical": "classical", "upbeat": "Dance", "focus": "Instrumental", "comfort": "Acoustic"},
        )
    except ServiceError as exc:
        missing(f"needs a local mpd: {exc}")
    client = connect(server)
    for name in ("calm", "classical", "focus"):
        client.rm(name)
    client.disconnect()
    yield server
    server.stop()


def config_for(tmp_path: Path, server: LocalService, extra: str = "") -> Path:
    return write(tmp_path, f'[mpd]\nhost = "{server.host}"\nport = {server.port}\n{extra}')


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["playlists", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def line(lines: list[str], playlist: str) -> str:
    return next(text for text in lines if text.split()[:1] == [playlist])


def test_lists_each_playlist_with_its_moods_and_songs(tmp_path, capsys, library):
    code, lines, err = run(capsys, "-c", str(config_for(tmp_path, library)))
    assert code == 0 and err == ""
    assert line(lines, "upbeat").split() == ["upbeat", "2", "songs", "happy,", "surprise"]
    assert line(lines, "calm").split() == ["calm", "missing", "anger,", "contempt,", "disgust,", "fear"]
    assert "missing: calm, focus" in lines[-1] and "--create" in lines[-1]


def test_create_builds_the_missing_playlists_from_genres_and_keeps_the_rest(tmp_path, capsys, library):
    client = connect(library)
    upbeat = stored(client, "upbeat")
    code, lines, err = run(capsys, "-c", str(config_for(tmp_path, library)), "--create")
    assert code == 0 and err == ""
    assert line(lines, "calm").split(None, 1)[1] == "created with 3 songs (Ambient 2, classical 1)"
    assert line(lines, "focus").split(None, 1)[1] == "created with 2 songs (Instrumental 2)"
    assert "kept: exists with 2 songs" in line(lines, "upbeat")
    assert stored(client, "calm") == ["calm-1.wav", "calm-2.wav", "classical-1.wav"]
    assert stored(client, "upbeat") == upbeat
    assert client.status()["playlistlength"] == "0"  # the queue is never touched
    client.disconnect()


def test_create_changes_no_existing_playlist_unless_replace(tmp_path, capsys, library):
    config = str(config_for(tmp_path, library, '[genres]\nupbeat = ["Acoustic"]\n'))
    client = connect(library)
    before = stored(client, "upbeat")
    assert run(capsys, "-c", config, "--create")[0] == 0
    assert stored(client, "upbeat") == before
    code, lines, _ = run(capsys, "-c", config, "--create", "--replace")
    assert code == 0 and line(lines, "upbeat").split(None, 1)[1] == "replaced with 2 songs (Acoustic 2)"
    assert stored(client, "upbeat") == ["comfort-1.wav", "comfort-2.wav"]
    client.disconnect()


def test_a_library_without_genre_tags_is_said_plainly(tmp_path, capsys):
    from edgemood.demo.services.mpd import start_mpd

    try:
        server = start_mpd(tmp_path / "mpd", {"untagged": 2}, genres={})
    except ServiceError as exc:
        missing(f"needs a local mpd: {exc}")
    try:
        code, lines, err = run(capsys, "-c", str(config_for(tmp_path, server)), "--create")
    finally:
        server.stop()
    assert code == 1 and err == ""
    assert any(text.startswith("the library has no genre tags") for text in lines)
    assert "not created: the library has no songs tagged Ambient" in line(lines, "calm")


def test_unreachable_mpd_is_one_line_and_exit_1(tmp_path, capsys):
    code, lines, err = run(capsys, "-c", str(write(tmp_path, f"[mpd]\nport = {free_port()}\n")))
    assert code == 1 and lines == []
    assert err.strip().count("\n") == 0 and "cannot reach MPD at localhost" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["--replace"], "--replace only works together with --create"), (["-c", "{bad}"], "[mpd] on_absent")],
)
def test_bad_usage_and_config_are_one_line_and_exit_2(tmp_path, capsys, argv, expected):
    bad = write(tmp_path, '[mpd]\non_absent = "never"\n')
    code, lines, err = run(capsys, *(arg.format(bad=bad) for arg in argv))
    assert code == 2 and lines == [] and err.strip().count("\n") == 0 and expected in err


def test_create_on_mopidy(tmp_path, capsys, mopidy):
    """Mopidy-MPD has playlistadd as well: a playlist of one's own, built from the comfort tracks' genre."""
    name = f"rainy-{tmp_path.name[-6:]}"  # the session's Mopidy may have run this before
    config = config_for(tmp_path, mopidy, f'[playlists]\nsad = "{name}"\n[genres]\n"{name}" = ["acoustic"]\n')
    code, lines, _ = run(capsys, "-c", str(config), "--create")
    assert code == 0 and line(lines, name).split(None, 1)[1] == "created with 3 songs (Acoustic 3)"
    client = connect(mopidy)
    assert sorted(stored(client, name)) == sorted(stored(client, "comfort"))
    client.disconnect()
