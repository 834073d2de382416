from __future__ import annotations

import pytest

import zoo
from zoo import plugins
from zoo.errors import PluginError, UnknownBackboneError
from zoo.registry import Backbone, get_registry, split_name


def test_split_name():
    assert split_name("timm:resnet34.a1_in1k") == ("timm", "resnet34", "a1_in1k")
    assert split_name("resnet34") == (None, "resnet34", None)
    assert split_name("torchvision:resnet34.IMAGENET1K_V1") == (
        "torchvision",
        "resnet34",
        "IMAGENET1K_V1",
    )


def test_bare_name_prefers_torchvision_then_timm():
    registry = get_registry()
    assert registry.get("resnet34")[0].id == "torchvision:resnet34"
    assert registry.get("convnext_tiny")[0].id == "torchvision:convnext_tiny"
    assert registry.get("resnet34d")[0].id == "timm:resnet34d"
    backbone, tag = registry.get("timm:resnet34.a1_in1k")
    assert backbone.id == "timm:resnet34" and tag == "a1_in1k"


def test_every_torchvision_classifier_and_timm_arch_is_listed():
    import timm
    import torchvision.models

    rows = zoo.list_backbones()
    ids = {r["id"] for r in rows}
    assert {
        f"torchvision:{n}" for n in torchvision.models.list_models(module=torchvision.models)
    } <= ids
    assert {f"timm:{n}" for n in timm.list_models()} <= ids


def test_tags_and_default_tag():
    rows = {r["id"]: r for r in zoo.list_backbones(["resnet34"])}
    assert rows["torchvision:resnet34"]["default_tag"] == "IMAGENET1K_V1"
    assert rows["timm:resnet34"]["default_tag"] == "a1_in1k"
    assert "tv_in1k" in rows["timm:resnet34"]["tags"]
    assert set(rows["timm:resnet34"]) == {
        "id",
        "source",
        "arch",
        "tags",
        "default_tag",
        "cached",
        "cached_tags",
        *("params", "gflops", "top1", "top5", "input_size", "license"),
    }


def test_list_patterns_source_and_pretrained():
    ids = [r["id"] for r in zoo.list_backbones(["resnet3?", "vgg1[16]"], source="torchvision")]
    assert ids == ["torchvision:resnet34", "torchvision:vgg11", "torchvision:vgg16"]
    assert [r["id"] for r in zoo.list_backbones(["timm:resnet34"])] == ["timm:resnet34"]
    pretrained = zoo.list_backbones(["timm:*"], pretrained=True)
    assert pretrained and all(r["tags"] for r in pretrained)
    assert len(pretrained) < len(zoo.list_backbones(["timm:*"]))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownBackboneError, match="did you mean.*resnet34"):
        get_registry().get("resnet43")
    with pytest.raises(UnknownBackboneError, match="unknown source 'nope'"):
        get_registry().get("nope:resnet34")


def test_info_reports_which_source_it_chose_and_the_others():
    data = zoo.info("resnet34")
    assert data["id"] == "torchvision:resnet34" and data["also"] == ["timm:resnet34"]
    assert data["head"] == {"module": "fc", "in_features": 512, "out_features": 1000}
    assert data["num_params"] == 21797672


def test_in_process_plugin_appears_and_disappears(tiny):
    assert [r["id"] for r in zoo.list_backbones(["tinynet"])] == ["tiny:tinynet"]
    plugins.unregister("tiny")
    assert zoo.list_backbones(["tinynet"]) == []
    plugins.register(__import__("conftest").TinyPlugin(), "tiny")  # for the fixture's teardown


class Duplicates:
    @zoo.hookimpl
    def register_backbones(self, register):
        register("same", lambda: None)
        register("same", lambda: None)


class Raises:
    @zoo.hookimpl
    def register_backbones(self, register):
        raise RuntimeError("boom")


class UnknownField:
    @zoo.hookimpl
    def register_backbones(self, register):
        register("x", lambda: None, heads="fc")


class HiddenField:
    @zoo.hookimpl
    def register_backbones(self, register):
        register("x", lambda: None, build_kwargs={"pretrained": True})


class NotCallable:
    @zoo.hookimpl
    def register_backbones(self, register):
        register("x", lambda: None, adapt_head="reset_classifier")


@pytest.mark.parametrize(
    "plugin,message",
    [
        (Duplicates(), "duplicate backbone id 'bad:same'"),
        (Raises(), "register_backbones raised RuntimeError: boom"),
        (UnknownField(), r"unknown field\(s\) \['heads'\]"),
        (HiddenField(), r"unknown field\(s\) \['build_kwargs'\]"),
        (NotCallable(), "adapt_head must be callable"),
    ],
    ids=["duplicate", "raises", "unknown-field", "hidden-field", "not-callable"],
)
def test_a_bad_plugin_is_reported_and_the_rest_keeps_working(plugin, message, caplog):
    plugins.register(plugin, "bad")
    try:
        assert zoo.list_backbones(["resnet34"])
        info = plugins.plugin_info("bad")
        assert info.error and __import__("re").search(message, info.error)
        assert "bad" in caplog.text
    finally:
        plugins.unregister("bad")


class Misspelt:
    @zoo.hookimpl
    def register_backbone(self, register):
        pass


def test_a_misspelt_hook_fails_loudly():
    with pytest.raises(PluginError, match="register_backbone"):
        plugins.register(Misspelt(), "misspelt")
    assert plugins.plugin_info("misspelt") is None


def _adapt(model, num_classes):
    pass


def _filter(state, model):
    return state


def _leaves():
    return ()


class WithCode:
    @zoo.hookimpl
    def register_backbones(self, register):
        register("net", lambda: None, adapt_head=_adapt, load_filter=_filter, fx_leaves=_leaves)


def test_code_fields_stay_out_of_the_index_and_come_back_with_the_factory():
    import json

    plugins.register(WithCode(), "coded")
    try:
        registry = get_registry()
        row = registry.get("coded:net")[0].to_row()
        assert not set(row) & {"factory", "adapt_head", "load_filter", "fx_leaves"}
        json.dumps(row)  # what the index keeps
        served = Backbone.from_row({**row, "build_kwargs": {}})  # as an older zoo wrote it
        assert served.factory is None and served.adapt_head is None
        loaded = registry.load_factory(served)
        assert (loaded.adapt_head, loaded.load_filter, loaded.fx_leaves) == (
            _adapt,
            _filter,
            _leaves,
        )
    finally:
        plugins.unregister("coded")


class BreaksLater:
    """Registers once, then raises: a plugin broken after its rows went into the index."""

    def __init__(self) -> None:
        self.calls = 0

    @zoo.hookimpl
    def register_backbones(self, register):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("lost its weights table\nand a second line")
        register("net", lambda: None)


def test_a_hook_that_fails_when_the_factory_is_fetched_is_one_plugin_error_line():
    plugins.register(BreaksLater(), "later")
    try:
        registry = get_registry()
        served = Backbone.from_row(registry.get("later:net")[0].to_row())  # from the index
        with pytest.raises(PluginError) as excinfo:
            registry.load_factory(served)
        message = str(excinfo.value)
        assert "plugin 'later'" in message and "later:net" in message
        assert "RuntimeError: lost its weights table" in message and "\n" not in message
    finally:
        plugins.unregister("later")
