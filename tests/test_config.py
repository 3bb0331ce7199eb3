"""The committed params.yaml is the composition of conf/; bad overrides fail with the key named."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

from seq2seq.config.check import check_file as check
from seq2seq.config.params import compose, load_params
from seq2seq.config.schema import validate
from seq2seq.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_is_the_composition_of_conf():
    composed = OmegaConf.to_yaml(compose())
    assert (ROOT / "params.yaml").read_text(encoding="utf-8") == composed, (
        "params.yaml is stale: run `seq2seq compose` after editing conf/"
    )


def test_defaults_are_iwslt14_de_en():
    cfg = compose()
    assert (cfg.data.source, cfg.data.src, cfg.data.tgt, cfg.data.archive) == ("iwslt14", "de", "en", None)
    assert cfg.data.md5["de-en"] == "10936dfdf616504ddbd844e91b94ef4a"
    assert cfg.data.mirrors[0] == "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/{src}-{tgt}.tgz"


def test_experiment_overlay_wins_over_group_defaults():
    cfg = compose(["experiment=smoke"])
    assert cfg.model.hidden_size == 128 and cfg.trainer.lightning.max_epochs == 2
    # and a command-line override still wins over the overlay
    assert compose(["experiment=smoke", "model.hidden_size=48"]).model.hidden_size == 48


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parents[1] / "conf/experiment").glob("*.yaml")))
def test_every_recipe_composes_and_validates(name):
    validate(compose([f"experiment={name}"] + (["data.path=/corpus"] if name.startswith("multi30k") else [])))


def test_iwslt14_cpu_recipe_is_a_cpu_run_with_a_working_day_budget():
    cfg = compose(["experiment=iwslt14_cpu"])
    assert (cfg.data.source, cfg.trainer.lightning.accelerator, cfg.trainer.lightning.precision) == ("iwslt14", "cpu", "32-true")
    days, hours, minutes, seconds = (int(x) for x in cfg.trainer.lightning.max_time.split(":"))
    assert days == 0 and 1 <= hours <= 7  # training plus evaluation end within a working day


def test_parallel_data_inherits_filters():
    cfg = compose(["data=parallel", "data.path=/corpus", "data.src=en", "data.tgt=fr"])
    assert (cfg.data.source, cfg.data.path, cfg.data.src, cfg.data.tgt) == ("parallel", "/corpus", "en", "fr")
    assert cfg.data.filter.max_len == 175
    validate(cfg)


def test_unknown_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="model.foo"):
        compose(["model.foo=1"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("+model.foo=1", "model.foo"),
        ("model.hidden_size=abc", "model.hidden_size"),
        ("model.hidden_size=0", "model.hidden_size"),
        ("model.dropout=1.5", "model.dropout"),
        ("tokenizer.model_type=wordpiece", "tokenizer.model_type"),
        ("data.source=web", "data.source"),
        ("+trainer.lightning.max_epoch=3", "max_epoch"),
        ("trainer.onednn_cache_capacity=-1", "trainer.onednn_cache_capacity"),
    ],
)
def test_bad_values_name_the_key(override, key, tmp_path):
    params = tmp_path / "params.yaml"
    OmegaConf.save(compose([override]), params)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check(params)


def test_parallel_without_path_is_rejected(tmp_path):
    cfg = compose(["data=parallel", "data.path=null"])
    with pytest.raises(ConfigError, match="data.path"):
        validate(cfg)


def test_loaded_params_are_read_only(tmp_path):
    params = tmp_path / "params.yaml"
    OmegaConf.save(compose(), params)
    cfg = load_params(params)
    with pytest.raises(ReadonlyConfigError, match="Cannot change read-only config container"):
        cfg.model.hidden_size = 3
    with pytest.raises(ReadonlyConfigError, match="Cannot change read-only config container"):
        cfg.trainer.lightning.max_epochs = 1
    assert cfg.model.hidden_size == compose().model.hidden_size != 3


def test_the_offline_plots_page_is_the_one_plots_page_makes():
    from seq2seq.cli import plots_page

    assert plots_page.PAGE.read_text(encoding="utf-8") == plots_page.page(), (
        ".dvc/plots_template.html is stale: run `seq2seq plots-page`")
    assert "html_template = plots_template.html" in (ROOT / ".dvc/config").read_text()
