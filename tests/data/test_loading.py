"""load_splits on tiny local files (through `datasets` and through the readers), a faked Hub, and -- when
SEQNLP_DATA (or the default data root) exists -- smoke loads of the real datasets."""

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import missing_data

from seqnlp.config import ConfigError
from seqnlp.data.errors import DataError
from seqnlp.data.loading import DataSpec, check_data_config, data_root, load_splits

TOY = Path(__file__).parent / "toy"


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch):
    """No network: the Hub is unreachable in CI. `datasets` reads the variables at import, so patch both."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty SEQNLP_DATA directory for the test to fill."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("SEQNLP_DATA", str(path))
    return path


@pytest.fixture
def load(tmp_path):
    """load_splits with a per-test `datasets` cache."""
    return lambda spec: load_splits(spec, cache_dir=tmp_path / "hf_cache")


def write(path: Path, text: str | bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ----------------------------------------------------------------------------------------- data_root
def test_data_root_prefers_env_then_data_then_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEQNLP_DATA", raising=False)
    assert data_root() == Path("data")  # nothing exists: the conventional place
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert data_root() == Path("..", "shared", "data")
    (tmp_path / "repo" / "data").mkdir()
    assert data_root() == Path("data")
    monkeypatch.setenv("SEQNLP_DATA", str(tmp_path / "elsewhere"))
    assert data_root() == tmp_path / "elsewhere"


# ------------------------------------------------------------------------------- tabular via datasets
def test_tsv_with_quotes_and_split_names_found_automatically(root, load):
    sst = root / "sentiment" / "toy"
    sst.mkdir(parents=True)
    (sst / "train.tsv").write_bytes((TOY / "sentiment.tsv").read_bytes())
    write(sst / "dev.tsv", 'sentence\tlabel\n" quoted " start\t1\n')
    write(sst / "test.tsv", "index\tsentence\n0\tno labels here\n")
    write(sst / "README.md", "not a split")
    splits = load(DataSpec("sentiment/toy"))
    assert list(splits) == ["train", "validation", "test"]
    assert splits["train"] == [
        {"text": 'it \'s a " charming " film ', "label": 1},
        {"text": "dull , dull , dull ", "label": 0},
        {"text": '"null"', "label": 0},
        {"text": "a wry , winning comedy", "label": 1},
    ]
    assert splits["validation"] == [{"text": '" quoted " start', "label": 1}]
    assert splits["test"] == [{"text": "no labels here"}]  # GLUE test: no label column


def test_jsonl_gz_csv_and_txt_by_path(tmp_path, root, load, monkeypatch):
    rows = [{"review": "great", "stars": 5, "id": 1}, {"review": "bad", "stars": 1, "id": 2}]
    jsonl = write(tmp_path / "reviews.jsonl.gz", "".join(json.dumps(r) + "\n" for r in rows), gz=True)
    spec = DataSpec(str(jsonl), columns={"text": "review", "label": "stars"})  # absolute path
    assert load(spec) == {"train": [{"text": "great", "label": 5}, {"text": "bad", "label": 1}]}

    write(tmp_path / "cwd" / "t.csv", 'text,label\n"a, b",pos\nNA,neg\n')
    monkeypatch.chdir(tmp_path / "cwd")  # relative to the working directory
    assert load(DataSpec("t.csv")) == {"train": [{"text": "a, b", "label": "pos"}, {"text": "NA", "label": "neg"}]}

    write(root / "char" / "tiny.txt", "First Citizen:\n\nBefore we proceed\n")  # relative to SEQNLP_DATA
    assert load(DataSpec("char/tiny.txt"))["train"] == [
        {"text": "First Citizen:"},
        {"text": ""},
        {"text": "Before we proceed"},
    ]


def test_glob_name_and_split_patterns(root, load):
    for shard in range(2):
        write(root / "shards" / f"train-{shard}.jsonl", json.dumps({"text": f"s{shard}", "label": shard}) + "\n")
    write(root / "shards" / "heldout.jsonl", json.dumps({"text": "h", "label": 0}) + "\n")
    assert [e["text"] for e in load(DataSpec("shards/train-*.jsonl"))["train"]] == ["s0", "s1"]
    spec = DataSpec("shards", splits={"train": "train-*.jsonl", "test": "heldout.jsonl"})
    assert {k: len(v) for k, v in load(spec).items()} == {"train": 2, "test": 1}
    with pytest.raises(DataError, match="split 'validation': no file matches 'dev.jsonl'"):
        load(DataSpec("shards", splits={"validation": "dev.jsonl"}))


def test_translation_dict_column(root, load):
    rows = [{"translation": {"de": "Hallo", "en": "Hello"}}, {"translation": {"de": "Ja", "en": "Yes"}}]
    write(root / "mt" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    expected = [{"source": "Hallo", "target": "Hello"}, {"source": "Ja", "target": "Yes"}]
    assert load(DataSpec("mt", columns={"source": "translation.de", "target": "translation.en"}))["train"] == expected
    assert load(DataSpec("mt", src_lang="de", tgt_lang="en"))["train"] == expected  # guessed
    with pytest.raises(DataError, match=r"no key 'fr' \(\['de', 'en'\]\)"):
        load(DataSpec("mt", columns={"source": "translation.fr", "target": "translation.en"}))


def test_missing_column_names_column_available_columns_and_file(root, load):
    path = write(root / "s" / "train.csv", "sentence,label\nok,1\n")
    with pytest.raises(DataError) as info:
        load(DataSpec("s", columns={"text": "text", "label": "label"}))
    message = str(info.value)
    assert "column 'text' not found" in message and "['sentence', 'label']" in message
    assert str(path) in message and info.value.field == "text"
    with pytest.raises(DataError, match="none of the usual column names"):
        write(root / "u" / "train.csv", "a,b\n1,2\n")
        load(DataSpec("u"))


@pytest.mark.parametrize(
    "name, content",
    [("train.csv", ""), ("train.jsonl", "\n \n"), ("train.jsonl.gz", b"\x1f\x8b" + gzip.compress(b"")[2:])],
)
def test_empty_file_is_a_data_error(root, load, name, content):
    path = write(root / "e" / name, content)
    with pytest.raises(DataError, match="empty file") as info:
        load(DataSpec("e"))
    assert info.value.path == str(path)


def test_header_only_and_malformed_files(root, load):
    write(root / "h" / "train.csv", "text,label\n")
    with pytest.raises(DataError, match="no examples"):
        load(DataSpec("h"))
    path = write(root / "j" / "train.jsonl", '{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match="could not read as jsonl") as info:
        load(DataSpec("j"))
    assert info.value.path == str(path)


def test_invalid_utf8_through_datasets_names_line(root, load):
    path = write(root / "b" / "train.tsv", b"sentence\tlabel\nfine\t1\nbro\xffken\t0\n")
    with pytest.raises(DataError) as info:
        load(DataSpec("b"))
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert "invalid utf-8" in str(info.value)


def test_unknown_suffix_asks_for_format(root, load):
    write(root / "x" / "train.dat", "a\n")
    with pytest.raises(DataError, match="set DataSpec.format"):
        load(DataSpec("x"))


# ----------------------------------------------------------------------------- formats via the readers
def test_conllu_conll_dailydialog_parallel_rt_polarity(root, load):
    ud = root / "ud"
    ud.mkdir()
    write(ud / "toy-ud-train.conllu.gz", (TOY / "tagged.conllu").read_bytes(), gz=True)
    write(ud / "toy-ud-dev.conllu", (TOY / "tagged.conllu").read_bytes())
    splits = load(DataSpec("ud"))  # format from the suffix, splits from the names
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "validation": 2}
    assert splits["train"][0] == {"tokens": ["Do", "n't", "stop", "."], "tags": ["AUX", "PART", "VERB", "PUNCT"]}
    assert load(DataSpec("ud", tag_field="xpos"))["validation"][0]["tags"] == ["VBP", "RB", "VB", "."]

    write(root / "chunk" / "test.txt", "He PRP B-NP\nran VBD B-VP\n\nGo VB B-VP\n")
    spec = DataSpec("chunk", format="conll", tag_col=2)
    assert load(spec) == {
        "test": [{"tokens": ["He", "ran"], "tags": ["B-NP", "B-VP"]}, {"tokens": ["Go"], "tags": ["B-VP"]}]
    }

    for split in ("train", "validation"):
        write(root / "dd" / split / f"dialogues_{split}.txt", "Hi . __eou__ Hello ! __eou__\n")
        write(root / "dd" / split / f"dialogues_act_{split}.txt", "1 1\n")
    splits = load(DataSpec("dd", format="dailydialog"))
    assert splits == {"train": [{"turns": ["Hi .", "Hello !"]}], "validation": [{"turns": ["Hi .", "Hello !"]}]}

    for split, n in (("train", 3), ("val", 2), ("test_2016", 1)):
        write(root / "m30k" / f"{split}.de.gz", "".join(f"de{i}\n" for i in range(n)), gz=True)
        write(root / "m30k" / f"{split}.en.gz", "".join(f"en{i}\n" for i in range(n)), gz=True)
    splits = load(DataSpec("m30k", format="parallel", src_lang="de", tgt_lang="en"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "validation": 2}
    assert splits["validation"][1] == {"source": "de1", "target": "en1"}
    spec = DataSpec("m30k", format="parallel", src_lang="en", tgt_lang="de", splits={"test": "test_2016"})
    assert load(spec) == {"test": [{"source": "en0", "target": "de0"}]}
    with pytest.raises(DataError, match=r"neither val\.fr nor val\.fr\.gz exists"):
        load(DataSpec("m30k", format="parallel", src_lang="en", tgt_lang="fr", splits={"test": "val"}))

    write(root / "rt" / "rt-polarity.pos", "good .\nfine .\n")
    write(root / "rt" / "rt-polarity.neg", "bad .\n")
    assert load(DataSpec("rt", format="rt_polarity"))["train"] == [
        {"text": "good .", "label": 1},
        {"text": "fine .", "label": 1},
        {"text": "bad .", "label": 0},
    ]


def test_empty_reader_file_and_columns_with_reader_format(root, load):
    write(root / "c" / "train.conllu", "# only a comment\n\n")
    with pytest.raises(DataError, match="no examples"):
        load(DataSpec("c"))
    with pytest.raises(ValueError, match="columns applies to"):
        load(DataSpec("c", columns={"tokens": "form"}))


# -------------------------------------------------------------------------------------------- carving
def _numbers(root: Path, n: int) -> None:
    write(root / "n" / "train.jsonl", "".join(json.dumps({"text": str(i), "label": i % 2}) + "\n" for i in range(n)))


def test_carve_out_is_seeded_deterministic_disjoint_and_complete(root, load):
    _numbers(root, 50)
    spec = DataSpec("n", carve={"validation": 0.2, "test": 5}, seed=7)
    first, second = load(spec), load(spec)
    assert first == second
    assert {k: len(v) for k, v in first.items()} == {"train": 35, "validation": 10, "test": 5}
    texts = {k: [e["text"] for e in v] for k, v in first.items()}
    assert sorted(sum(texts.values(), []), key=int) == [str(i) for i in range(50)]  # disjoint and complete
    assert texts["train"] == sorted(texts["train"], key=int)  # the file's order is kept
    other = load(DataSpec("n", carve={"validation": 0.2, "test": 5}, seed=8))
    assert other["validation"] != first["validation"]
    assert load(DataSpec("n", carve={"validation": 0.2, "test": 5, "seed": 7})) == first


def test_carve_skips_existing_splits_and_rejects_impossible_requests(root, load):
    _numbers(root, 4)
    write(root / "n" / "dev.jsonl", json.dumps({"text": "d", "label": 0}) + "\n")
    assert load(DataSpec("n", carve={"validation": 0.5}))["validation"] == [{"text": "d", "label": 0}]
    with pytest.raises(DataError, match="leaves none to train on"):
        load(DataSpec("n", carve={"test": 4}))
    with pytest.raises(DataError, match="leaves 'test' empty"):
        load(DataSpec("n", carve={"test": 0.01}))


def test_data_spec_validates_itself():
    with pytest.raises(ConfigError, match="format must be one of auto | csv"):  # a config problem: exit 2
        DataSpec("x", format="xml")
    with pytest.raises(ValueError, match="columns keys"):
        DataSpec("x", columns={"sentence": "text"})
    with pytest.raises(ValueError, match="carve"):
        DataSpec("x", carve={"validation": 1.5})
    with pytest.raises(ConfigError, match=r"carve\['validation'\] must be a fraction in \(0, 1\) or a whole number"):
        DataSpec("x", carve={"validation": -0.1})
    with pytest.raises(ValueError, match="src_lang"):
        DataSpec("x", format="parallel")
    with pytest.raises(ConfigError, match="tag_field must be one of upos | xpos, got 'lemma'"):
        DataSpec("x", tag_field="lemma")


@dataclass
class _Data:  # the fields a task's data block has (each task's DataConfig has some of them)
    format: str = "auto"
    tag_field: str = "upos"
    carve: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)


@pytest.mark.parametrize("bad, message", [
    (dict(format="xml"), "data.format must be one of auto | csv | tsv"),
    (dict(tag_field="lemma"), "data.tag_field must be one of upos | xpos, got 'lemma'"),
    (dict(carve={"validation": -0.1}), "data.carve.validation must be a fraction in (0, 1) or a whole number"),
    (dict(carve={"test": 1.5}), "data.carve.test must be"),
    (dict(carve={"test": True}), "data.carve.test must be"),
    (dict(columns={"sentence": "text"}), "data.columns: the keys are our field names"),
])
def test_check_data_config_names_the_key_and_the_allowed_values(bad, message):
    check_data_config(_Data())  # the defaults are fine
    check_data_config(_Data(carve={"validation": 0.1, "test": 200, "seed": 3}))
    with pytest.raises(ConfigError) as e:
        check_data_config(_Data(**bad))
    assert message in str(e.value)


# ------------------------------------------------------------------------- directories and saved datasets
def test_a_split_path_that_is_a_directory_is_named(root, load):
    write(root / "c" / "sub" / "a.conllu", "1\tHi\t_\tINTJ\t_\t_\t_\t_\t_\t_\n\n")
    (root / "c" / "train.conllu").mkdir()
    with pytest.raises(DataError, match=r"c/sub: split 'train': 'sub' is a directory, not a data file"):
        load(DataSpec("c", format="conllu", splits={"train": "sub"}))
    with pytest.raises(DataError, match=r"c/train\.conllu: split 'train': 'train\.conllu' is a directory"):
        load(DataSpec("c", format="conllu", splits={"train": "train.conllu"}))
    with pytest.raises(DataError, match=r"the directory holds \['sub/', 'train\.conllu/'\]"):  # by name: dirs marked
        load(DataSpec("c", format="conllu"))
    assert load(DataSpec("c", format="conllu", splits={"train": "sub/*.conllu"}))["train"] == [
        {"tokens": ["Hi"], "tags": ["INTJ"]}]
    (root / "m" / "train.de").mkdir(parents=True)
    write(root / "m" / "train.en", "a\n")
    with pytest.raises(DataError, match=r"m/train\.de: split 'train': is a directory, not a de file"):
        load(DataSpec("m", format="parallel", src_lang="de", tgt_lang="en", splits={"train": "train"}))
    with pytest.raises(DataError, match=r"holds \['train\.de/', 'train\.en'\]"):
        load(DataSpec("m", format="parallel", src_lang="de", tgt_lang="en"))
    with pytest.raises(DataError, match="matches only directories"):
        load(DataSpec(str(root / "c" / "*.conllu")))


def _saved(path: Path):
    import datasets

    labels = datasets.ClassLabel(names=["negative", "positive"])
    features = datasets.Features({"sentence": datasets.Value("string"), "label": labels})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": [f"film {i}" for i in range(10)],
                                             "label": [i % 2 for i in range(10)]}, features=features),
        "validation": datasets.Dataset.from_dict({"sentence": ["bad", "good"], "label": [0, 1]}, features=features),
    })
    dd.save_to_disk(str(path))
    return dd


def test_a_dataset_saved_with_save_to_disk_is_loaded_from_disk(root, load):
    dd = _saved(root / "saved")
    splits = load(DataSpec("saved"))  # under $SEQNLP_DATA, like any local dataset
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "validation": 2}
    assert splits["validation"] == [{"text": "bad", "label": "negative"}, {"text": "good", "label": "positive"}]
    chosen = load(DataSpec(str(root / "saved"), splits={"train": "train[:6]", "test": "train[-2:]",
                                                        "validation": "validation+train[6:8]"}))
    assert {k: len(v) for k, v in chosen.items()} == {"train": 6, "validation": 4, "test": 2}
    assert chosen["test"][-1]["text"] == "film 9"
    carved = load(DataSpec("saved", splits={"train": "train"}, carve={"validation": 0.2}))
    assert {k: len(v) for k, v in carved.items()} == {"train": 8, "validation": 2}
    dd["train"].save_to_disk(str(root / "one"))  # a single Dataset: the train split
    assert [e["text"] for e in load(DataSpec("one"))["train"]] == [f"film {i}" for i in range(10)]
    with pytest.raises(DataError, match=r"saved: split 'test': the saved dataset has no split 'tset' \(it has "
                                        r"\['train', 'validation'\]"):
        load(DataSpec("saved", splits={"test": "tset"}))
    (root / "saved" / "train" / "state.json").unlink()  # a broken copy
    with pytest.raises(DataError, match=r"saved: could not read the dataset saved with save_to_disk"):
        load(DataSpec("saved"))


# ------------------------------------------------------------------------------------------- the Hub
def test_missing_dataset_names_local_paths_and_hub_id(root, load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        load(DataSpec("someone/no_such_dataset"))
    message = str(info.value)
    assert str(root / "someone" / "no_such_dataset") in message
    assert str(tmp_path / "someone" / "no_such_dataset") in message
    assert "Hub dataset 'someone/no_such_dataset'" in message and "offline" in message
    with pytest.raises(DataError, match="not a valid Hub id"):
        load(DataSpec(str(tmp_path / "nothing" / "*.csv")))


def test_hub_dataset_classlabels_become_names(monkeypatch, load):
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    tags = ClassLabel(names=["NOUN", "VERB"])
    features = Features(
        {"tokens": List(Value("string")), "pos_tags": List(tags), "label": ClassLabel(names=["neg", "pos"])}
    )
    data = {
        "train": Dataset.from_dict(
            {"tokens": [["dogs", "bark"]], "pos_tags": [[0, 1]], "label": [1]}, features=features
        ),
        "dev": Dataset.from_dict({"tokens": [["cats"]], "pos_tags": [[0]], "label": [-1]}, features=features),
    }
    calls = []

    def fake_load_dataset(name, subset=None, split=None, cache_dir=None):
        calls.append((name, subset, split))
        if split is None:
            return DatasetDict(data)
        return [data[s] for s in split]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load(DataSpec("someone/tagged", subset="en"))
    assert splits == {
        "train": [{"tokens": ["dogs", "bark"], "tags": ["NOUN", "VERB"], "label": "pos"}],
        "validation": [{"tokens": ["cats"], "tags": ["NOUN"], "label": None}],  # -1: no label
    }
    spec = DataSpec("someone/tagged", splits={"test": "dev"}, columns={"tokens": "tokens", "tags": "pos_tags"})
    assert load(spec) == {"test": [{"tokens": ["cats"], "tags": ["NOUN"]}]}
    assert calls == [("someone/tagged", "en", None), ("someone/tagged", None, ["dev"])]


# ----------------------------------------------------------------------------------------- real data
@pytest.fixture
def real_data(monkeypatch):
    path = data_root()
    if not path.is_dir():
        missing_data(f"real datasets not available: {path.absolute()} does not exist (set SEQNLP_DATA)")
    monkeypatch.setenv("SEQNLP_DATA", str(path.absolute()))
    return path


def test_real_sst2_dev(real_data, load):
    dev = load(DataSpec("sentiment/sst2", splits={"validation": "dev.tsv"}))["validation"]
    assert len(dev) == 872
    assert sum(e["label"] for e in dev) == 444 and all(isinstance(e["text"], str) and e["text"] for e in dev)


def test_real_ewt_dev_conllu_gz(real_data, load):
    dev = load(DataSpec("pos/ud_english_ewt", splits={"validation": "en_ewt-ud-dev.conllu.gz"}))["validation"]
    assert len(dev) == 2001 and sum(len(e["tokens"]) for e in dev) == 25147
    assert len({t for e in dev for t in e["tags"]}) == 17
    assert dev[0]["tokens"][:3] == ["From", "the", "AP"]


def test_real_conll2000_test(real_data, load):
    test = load(DataSpec("pos/conll2000", format="conll", splits={"test": "test.txt"}))["test"]
    assert len(test) == 2012 and sum(len(e["tokens"]) for e in test) == 47377
    assert test[0]["tags"][:3] == ["NNP", "NNP", "NNP"]


def test_real_multi30k_val_de_en(real_data, load):
    spec = DataSpec(
        "translation/multi30k", format="parallel", src_lang="de", tgt_lang="en", splits={"validation": "val"}
    )
    val = load(spec)["validation"]
    assert len(val) == 1014 and all(e["source"] and e["target"] for e in val)


def test_real_dailydialog_validation(real_data, load):
    spec = DataSpec(
        "dialogue/dailydialog", format="dailydialog", splits={"validation": "validation/dialogues_validation.txt"}
    )
    val = load(spec)["validation"]
    assert len(val) == 1000 and sum(len(e["turns"]) for e in val) == 8069


def test_real_rt_polarity_has_no_control_characters(real_data, load):
    splits = load(DataSpec("sentiment/rt_polarity", format="rt_polarity", carve={"validation": 0.1}, seed=0))
    examples = splits["train"] + splits["validation"]
    assert len(examples) == 10662 and sum(e["label"] for e in examples) == 5331
    assert not any("\x80" <= ch <= "\x9f" for e in examples for ch in e["text"])
