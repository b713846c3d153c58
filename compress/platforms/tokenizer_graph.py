"""The tokenizer inside the ONNX graph: onnxruntime-extensions' BertTokenizer operator, fed the student's own
Hugging Face tokenizer's vocabulary, in front of an ids-in model (a string-in model: `text` in, the task's output
and each token's character span `offset_mapping` out).

The operator alone does not give the Python tokenizer's ids on every text (with its best option set,
`strip_accents=1`, it matches on the dev split but not on generated text with accents, scripts and symbols): it
lower-cases and strips accents for Latin-1 only, reads literal special tokens as text, stops at a NUL, and gives a
word's matched prefix pieces plus `[UNK]` where WordPiece gives one `[UNK]`. So in `exact` mode the text reaches it
already normalized the way the Hugging Face tokenizer normalizes it, by standard and extensions string operators whose
tables are computed from that tokenizer itself (its normalizer and pre-tokenizer run on every code point; nothing is
typed in by hand): NUL kept as a placeholder, special-token literals split out, each character mapped by one
LabelEncoder (lower-case, accents, deleted and space characters, punctuation and CJK padded with spaces), a word
holding a character outside the vocabulary turned into one `[UNK]`. Then the ids equal the Python tokenizer's on every
text tried (36,835, with offsets in characters of the input). A vocabulary that breaks the assumptions this needs
falls back to the plain operator (`mode` says which).

Truncation happens after the operator, as `truncation=True, max_length=L` does: the first L - 1 ids, then `[SEP]`
(the operator's own max_length corrupts the offsets it writes). One text per call: the operator reads two strings
as a sentence pair.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

EXTENSIONS_HINT = "pip install onnxruntime-extensions"
TEXT_INPUT = "text"
OFFSETS_OUTPUT = "offset_mapping"
OPSET = 20  # the standard StringSplit (opset 20) reads past a NUL; the extensions' string kernels do not
_IDS = ("input_ids", "token_type_ids", "attention_mask")
TABLE_CACHE = Path.home() / ".cache" / "bert-compress" / "tokenizer-tables"

CONTRIB = "ai.onnx.contrib"
SENT0 = 0xE000  # U+E000..U+E00F: placeholders (private use, which the Python tokenizer deletes from raw text anyway)
MARK = chr(SENT0)  # a character outside the vocabulary's alphabet


class NotExact(ValueError):
    """This vocabulary breaks an assumption of the exact front end (the plain operator is used instead)."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise NotExact(what)


# character classes of the extensions' BasicTokenizer (base/string_utils.cc, v0.15)
def _ortx_is_punct(c):
    return (c in (161, 167, 171, 187, 191, 894, 903, 12336, 12349) or 33 <= c <= 47 or 58 <= c <= 64 or
            91 <= c <= 96 or 123 <= c <= 126 or 182 <= c <= 183 or 8208 <= c <= 8231 or 8240 <= c <= 8259 or
            8261 <= c <= 8273 or 8275 <= c <= 8286 or 12289 <= c <= 12291 or 12296 <= c <= 12305 or
            12308 <= c <= 12319)
_ORTX_CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
             (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

def _ranges(cps):
    out = []
    for c in sorted(set(cps)):
        if out and c == out[-1][1] + 1: out[-1][1] = c
        else: out.append([c, c])
    return out
def _cls(cps):
    return "[" + "".join("\\x{%x}" % a if a == b else "\\x{%x}-\\x{%x}" % (a, b) for a, b in _ranges(cps)) + "]"
def _codepoints():
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
def _const_str(name, s):
    return numpy_helper.from_array(np.array([s], dtype=object), name)

def _tables(hf):
    """Per-code-point behaviour of the HF tokenizer's own normalizer and pre-tokenizer: (code point -> its
    normalized text where it changes, the CJK code points it pads with spaces, the punctuation it splits on).
    Reading all 1.1M code points takes seconds, so the result is kept in TABLE_CACHE, keyed by the normalizer and
    pre-tokenizer definitions and the tokenizers version that ran them."""
    import hashlib
    import json
    from importlib.metadata import version

    bt = hf.backend_tokenizer
    spec = json.loads(bt.to_str())
    key = hashlib.sha256(json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer"), version("tokenizers")],
                                    sort_keys=True).encode()).hexdigest()[:24]
    cached = TABLE_CACHE / f"{key}.json"
    try:
        got = json.loads(cached.read_text(encoding="utf-8"))
        return {int(k): v for k, v in got["f"].items()}, set(got["cjk"]), set(got["punct"])
    except (OSError, ValueError, KeyError):
        pass
    norm, pre = bt.normalizer, bt.pre_tokenizer
    f = {}
    for cp in _codepoints():
        c = chr(cp); n = norm.normalize_str(c)
        if n != c: f[cp] = n
    hf_cjk = {cp for cp, n in f.items() if n == " " + chr(cp) + " "}
    # punctuation as HF's BertPreTokenizer sees it (its own Unicode tables, not Python's)
    punct = {cp for cp in _codepoints() if cp != 32 and len(pre.pre_tokenize_str("a" + chr(cp) + "b")) == 3}
    try:
        from compress.fsutil import write_json

        TABLE_CACHE.mkdir(parents=True, exist_ok=True)
        write_json(cached, {"f": {str(k): v for k, v in f.items()}, "cjk": sorted(hf_cjk), "punct": sorted(punct)})
    except OSError:  # a read-only home: computed again next time
        pass
    return f, hf_cjk, punct

def _special_tokens(hf):
    """name -> (literal, sentinel) for every added token HF splits out of raw text."""
    tokmap = {"unk_token": hf.unk_token, "sep_token": hf.sep_token, "pad_token": hf.pad_token,
              "cls_token": hf.cls_token, "mask_token": hf.mask_token}
    added = list(hf.get_added_vocab())
    for t in added:
        if t not in tokmap.values(): tokmap["added_%d" % len(tokmap)] = t
    _require(len(tokmap) < 15, "more than 14 special tokens")
    return {k: (t, chr(SENT0 + 1 + i)) for i, (k, t) in enumerate(tokmap.items())}, added

def _i64(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)

def _offsets_subgraph(nodes, inits, contrib, vocab, unk_id):
    """offset_mapping in characters of the ORIGINAL text, HF-style (special tokens (0,0)).
    Every non-space char of `normalized` comes from one piece (char or special literal) of the input;
    token k covers normalized non-space chars [E_k - len_k, E_k)."""
    mk = lambda op, i, o, **kw: nodes.append(helper.make_node(op, i, o, **kw))
    is_start = [0 if (t.startswith("##") and len(t) > 2) else 1 for t in vocab]
    tlen = [len(t) - 2 if (t.startswith("##") and len(t) > 2) else len(t) for t in vocab]
    inits += [_i64("o_is_start", is_start), _i64("o_tlen", tlen), _i64("o_unk", unk_id), _i64("o_0", 0),
              _i64("o_1", [1]), _i64("o_s0", [0]), _i64("o_ax0", 0), _i64("o_ax1", [1]),
              _i64("o_zero2", [[0, 0]]), _i64("o_one", 1),
              _const_str("o_sp_pat", "( +)"), _const_str("o_sp_keep", ""), _const_str("o_sp", " "),
              _const_str("o_empty", "")]
    # raw char span of every piece
    contrib("StringLength", ["pieces"], ["o_plen"])
    mk("CumSum", ["o_plen", "o_ax0"], ["o_pend"])
    mk("Sub", ["o_pend", "o_plen"], ["o_pbeg"])
    # non-space normalized chars per piece
    contrib("StringRegexReplace", ["pieces_n", "o_sp", "o_empty"], ["o_pn_nosp"], global_replace=1)
    contrib("StringLength", ["o_pn_nosp"], ["o_ns"])
    mk("CumSum", ["o_ns", "o_ax0"], ["o_ns_end"])
    mk("Sub", ["o_ns_end", "o_ns"], ["o_ns_beg"])
    mk("ReduceSum", ["o_ns"], ["o_Q"], keepdims=1)
    mk("Add", ["o_Q", "o_1"], ["o_Q1"])
    mk("ConstantOfShape", ["o_Q1"], ["o_marks0"], value=helper.make_tensor("v", TensorProto.INT64, [1], [0]))
    mk("Min", ["o_ns_beg", "o_Q"], ["o_ns_beg_c"])
    mk("Shape", ["o_ns_beg_c"], ["o_P"])
    mk("ConstantOfShape", ["o_P"], ["o_ones_p"], value=helper.make_tensor("v", TensorProto.INT64, [1], [1]))
    mk("ScatterElements", ["o_marks0", "o_ns_beg_c", "o_ones_p"], ["o_marks"], axis=0, reduction="add")
    mk("CumSum", ["o_marks", "o_ax0"], ["o_marks_cs"])
    mk("Sub", ["o_marks_cs", "o_one"], ["o_piece_of_q"])
    # tokens between [CLS] and [SEP]
    mk("Shape", ["tok_input_ids"], ["o_n"])
    mk("Sub", ["o_n", "o_1"], ["o_n1"])
    mk("Slice", ["tok_input_ids", "o_1", "o_n1", "o_s0"], ["o_inner"])
    mk("Gather", ["o_is_start", "o_inner"], ["o_start"], axis=0)
    mk("CumSum", ["o_start", "o_ax0"], ["o_wid1"])
    mk("Sub", ["o_wid1", "o_one"], ["o_wid"])
    # word lengths (chars) of `normalized` for whole-word [UNK]s
    contrib("StringRegexSplitWithOffsets", ["normalized", "o_sp_pat", "o_sp_keep"], ["o_words", "o_wb", "o_we", "o_wr"])
    contrib("StringLength", ["o_words"], ["o_wlen"])
    mk("Max", ["o_wid", "o_0"], ["o_wid_c"])
    mk("Gather", ["o_wlen", "o_wid_c"], ["o_unk_len"], axis=0)
    mk("Gather", ["o_tlen", "o_inner"], ["o_voc_len"], axis=0)
    mk("Equal", ["o_inner", "o_unk"], ["o_is_unk"])
    mk("Where", ["o_is_unk", "o_unk_len", "o_voc_len"], ["o_len"])
    mk("CumSum", ["o_len", "o_ax0"], ["o_E"])
    mk("Sub", ["o_E", "o_len"], ["o_S"])
    mk("Sub", ["o_E", "o_one"], ["o_Em1"])
    mk("Gather", ["o_piece_of_q", "o_S"], ["o_p0"], axis=0)
    mk("Gather", ["o_piece_of_q", "o_Em1"], ["o_p1"], axis=0)
    mk("Gather", ["o_pbeg", "o_p0"], ["o_b"], axis=0)
    mk("Gather", ["o_pend", "o_p1"], ["o_e"], axis=0)
    mk("Unsqueeze", ["o_b", "o_ax1"], ["o_b2"])
    mk("Unsqueeze", ["o_e", "o_ax1"], ["o_e2"])
    mk("Concat", ["o_b2", "o_e2"], ["o_be"], axis=1)
    mk("Concat", ["o_zero2", "o_be", "o_zero2"], ["tok_offset_mapping"], axis=0)

def _build(hf, max_length, exact, opset=OPSET):
    vd = hf.get_vocab()
    vocab = [t for t, _ in sorted(vd.items(), key=lambda kv: kv[1])]
    if len(set(vd.values())) != len(vd) or sorted(vd.values()) != list(range(len(vd))):
        raise ValueError("the vocabulary's ids are not 0 .. size - 1")
    nodes, inits = [], []
    def contrib(op, ins, outs, **kw):
        nodes.append(helper.make_node(op, ins, outs, domain=CONTRIB, name=f"{op}_{len(nodes)}", **kw))
    def regex(cur, pat, rw):
        k = len(nodes)
        inits.extend([_const_str(f"re_pat_{k}", pat), _const_str(f"re_rw_{k}", rw)])
        contrib("StringRegexReplace", [cur, f"re_pat_{k}", f"re_rw_{k}"], [f"re_out_{k}"], global_replace=1)
        return f"re_out_{k}"
    attrs = dict(do_lower_case=1, strip_accents=1, tokenize_chinese_chars=1, suffix_indicator="##",
                 unk_token=hf.unk_token, sep_token=hf.sep_token, pad_token=hf.pad_token,
                 cls_token=hf.cls_token, mask_token=hf.mask_token)
    cur = "text"
    if exact:
        f, hf_cjk, punct = _tables(hf)
        specials, added = _special_tokens(hf)
        V1 = {ord(t) for t in vocab if len(t) == 1}
        V2 = {ord(t[2:]) for t in vocab if t.startswith("##") and len(t) == 3}
        # the whole-word-[UNK] rule below needs: a word fails in WordPiece iff it has a char outside V1
        _require(V1 == V2, "single characters and ##characters of the vocabulary differ")
        _require(not any(_ortx_is_punct(c) and c not in punct for c in range(0x3000)),
                 "the operator splits on characters the tokenizer does not")
        ortx_cjk = {c for a, b in _ORTX_CJK for c in range(a, b + 1)}
        _require(hf_cjk <= ortx_cjk and not (V1 & (ortx_cjk - hf_cjk)), "CJK ranges differ")
        _require(not (V1 & set(range(SENT0, SENT0 + 16))), "the vocabulary holds the placeholder characters")
        unk_s = specials["unk_token"][1]
        NULREP = chr(SENT0 + 15)
        pua = {c for c, n in f.items() if n == "" and (0xE000 <= c <= 0xF8FF or c >= 0xF0000)}
        # 0) NUL -> NULREP (1 char, keeps char offsets): every extensions string kernel reads its input
        #    as a C string (stops at the first NUL); the standard StringSplit (opset 20) does not.
        inits += [_const_str("nul_rep", NULREP), numpy_helper.from_array(np.array(1, np.int64), "ax1")]
        nodes.append(helper.make_node("StringSplit", [cur], ["nul_parts", "nul_n"], delimiter="\x00", name="nul_split"))
        contrib("StringJoin", ["nul_parts", "nul_rep", "ax1"], ["nul_free"]); cur = "nul_free"
        # 1) pieces = literal special tokens (HF splits them out of raw text) or single chars
        lits = sorted((t for _, (t, _) in specials.items() if t in added), key=len, reverse=True)
        piece_pat = "(" + "|".join("".join("\\x{%x}" % ord(ch) for ch in t) for t in lits) + "|(?s).)"
        inits += [_const_str("piece_pat", piece_pat), _const_str("piece_keep", piece_pat)]
        contrib("StringRegexSplitWithOffsets", [cur, "piece_pat", "piece_keep"], ["pieces", "p_beg", "p_end", "p_row"])
        # 2) private-use chars -> "" (HF deletes them; also frees the sentinel block)
        inits += [_const_str("pua_pat", _cls(pua)), _const_str("empty", "")]
        contrib("StringRegexReplace", ["pieces", "pua_pat", "empty"], ["pieces2"], global_replace=1)
        # 3) LabelEncoder built from HF's per-char normalization: deleted -> "", whitespace -> " ",
        #    upper/accented -> normalized, punctuation and CJK -> " c ", special literal -> " sentinel ",
        #    chars outside the vocab alphabet -> MARK (default)
        def out_char(ch):
            c = ord(ch)
            if ch == " ": return ch
            if c in punct or c in hf_cjk: return " " + (ch if c in V1 else MARK) + " "
            return ch if c in V1 else MARK
        keys, vals = ["", ], ["", ]
        for t, s_ in specials.values():
            if t in added: keys.append(t); vals.append(" " + s_ + " ")
        for c in _codepoints():
            ch = chr(c)
            if c in pua: continue
            n = f.get(c, ch)
            if n == "": v = ""
            elif n.strip() == "": v = " "
            else: v = "".join(out_char(x) for x in n)
            if v == MARK: continue                     # default
            keys.append(ch); vals.append(v)
        nodes.append(helper.make_node("LabelEncoder", ["pieces2"], ["pieces_n"], domain="ai.onnx.ml", name="char_map",
                                      keys_strings=keys, values_strings=vals, default_string=MARK))
        inits += [_const_str("join_sep", ""), numpy_helper.from_array(np.array(0, np.int64), "ax0")]
        contrib("StringJoin", ["pieces_n", "join_sep", "ax0"], ["normalized"]); cur = "normalized"
        # 4) WordPiece gives ONE [UNK] for a word with any char outside the vocab (the op would emit the
        #    matched prefix pieces + [UNK]); words are space-delimited now.
        cur = regex(cur, "[^ ]*" + MARK + "[^ ]*", unk_s)
        # text is now HF-normalized; special tokens are sentinels -> rename those vocab entries (ids kept)
        attrs.update(do_lower_case=0, strip_accents=0)
        for name, (t, s_) in specials.items():
            vocab[vd[t]] = s_
            if name in attrs: attrs[name] = s_
    attrs["vocab_file"] = "\n".join(vocab)
    outs = ["input_ids", "token_type_ids", "attention_mask", "offset_mapping"]
    tok_outs = ["tok_" + o for o in outs]
    if exact:
        contrib("BertTokenizer", [cur], tok_outs[:3], **attrs)   # the op's own offsets are not input offsets
        _offsets_subgraph(nodes, inits, contrib, vocab, vd[hf.unk_token])  # renamed: specials are 1 char
    else:
        contrib("BertTokenizer", [cur], tok_outs, **attrs)
    if not max_length:
        nodes += [helper.make_node("Identity", ["tok_" + o], [o]) for o in outs]
    if max_length:
        # single sequence, HF truncation=True,max_length=L: keep ids[:L-1] and the final [SEP]
        for n_, v in [("c0", 0), ("c1", 1), ("cm1", -1), ("cL", max_length), ("cINF", np.iinfo(np.int64).max)]:
            inits.append(numpy_helper.from_array(np.array([v], np.int64), n_))
        nodes += [helper.make_node("Shape", ["tok_input_ids"], ["n_all"]),
                  helper.make_node("Min", ["n_all", "cL"], ["n_keep"]),
                  helper.make_node("Sub", ["n_keep", "c1"], ["n_head"])]
        for o in outs:
            nodes += [helper.make_node("Slice", ["tok_" + o, "c0", "n_head", "c0"], [o + "_head"]),
                      helper.make_node("Slice", ["tok_" + o, "cm1", "cINF", "c0"], [o + "_last"]),
                      helper.make_node("Concat", [o + "_head", o + "_last"], [o], axis=0)]
    g = helper.make_graph(nodes, "bert_tokenizer", [helper.make_tensor_value_info("text", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n_tokens"]),
         helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["n_tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n_tokens"]),
         helper.make_tensor_value_info("offset_mapping", TensorProto.INT64, ["n_tokens", 2])], inits)
    ops = [helper.make_opsetid("", opset), helper.make_opsetid(CONTRIB, 1)]
    if exact: ops.append(helper.make_opsetid("ai.onnx.ml", 3))
    return helper.make_model(g, opset_imports=ops, ir_version=9)



def _hf_tokenizer(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    from compress.teacher import quiet_transformers

    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


def unsupported_tokenizer(tokenizer_dir: Path) -> str | None:
    """Why the extensions' BERT tokenizer cannot stand in for this one (None: it can)."""
    from targets.tokenizer import load_tokenizer

    kind = load_tokenizer(Path(tokenizer_dir) / "tokenizer.json").kind
    if kind != "bert-wordpiece":
        return f"the student's tokenizer is {kind}; the in-graph tokenizer here is onnxruntime-extensions' BERT WordPiece"
    return None


@functools.lru_cache(maxsize=4)
def _cached(tokenizer_dir: str, digest: str, max_length: int):
    hf = _hf_tokenizer(Path(tokenizer_dir))
    try:
        return _build(hf, max_length, exact=True), "exact"
    except NotExact as exc:
        return _build(hf, max_length, exact=False), f"operator only ({exc})"


def tokenizer_graph(tokenizer_dir: Path, max_length: int):
    """(graph, mode): text [1] -> input_ids, token_type_ids, attention_mask [n] int64 and offset_mapping [n, 2],
    n <= max_length; mode "exact" or why the plain operator is used. Built once per tokenizer (about 5 s: every
    code point through the tokenizer's normalizer)."""
    import onnx

    from compress.fsutil import file_digest

    graph, mode = _cached(str(Path(tokenizer_dir).resolve()), file_digest(Path(tokenizer_dir) / "tokenizer.json"), max_length)
    copy = onnx.ModelProto()
    copy.CopyFrom(graph)
    return copy, mode


def string_in_model(model_path: Path, tokenizer_dir: Path, max_length: int, out: Path) -> str:
    """Write `out`: the ids-in ONNX model at `model_path` with the tokenizer graph in front; returns the mode.
    Inputs: `text` string [1]; outputs: the model's, then `offset_mapping`."""
    import onnx
    from onnx import compose, version_converter

    tok, mode = tokenizer_graph(tokenizer_dir, max_length)
    model = onnx.load(str(model_path))
    have = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    target = max(have, OPSET)
    if have < target:
        try:
            model = version_converter.convert_version(model, target)
        except Exception:  # noqa: BLE001 - opsets 19 / 20 changed nothing a BERT graph uses: the number alone moves
            for o in model.opset_import:
                if o.domain in ("", "ai.onnx"):
                    o.version = target
    for o in tok.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = target
    # a domain both graphs import (ai.onnx.ml: the LabelEncoder here, ONNX Runtime's quantizer stamps v5) at one
    # version: the newer, whose LabelEncoder still reads the string attributes used here
    theirs = {o.domain: o.version for o in model.opset_import}
    for o in tok.opset_import:
        if o.domain not in ("", "ai.onnx") and theirs.get(o.domain, 0) > o.version:
            o.version = theirs[o.domain]
    tok.ir_version = model.ir_version = max(tok.ir_version, model.ir_version)
    graph = tok.graph
    graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "unsqueeze_batch"))
    model_inputs = [i.name for i in model.graph.input]
    io_map = []
    for name in _IDS:  # [n] -> [1, n]: the model's batch of one
        if name in model_inputs:
            graph.node.append(helper.make_node("Unsqueeze", [name, "unsqueeze_batch"], [f"{name}_2d"]))
            graph.output.append(helper.make_tensor_value_info(f"{name}_2d", TensorProto.INT64, [1, "n_tokens"]))
            io_map.append((f"tok/{name}_2d", name))
    tok = compose.add_prefix(tok, prefix="tok/", rename_inputs=False, rename_outputs=True)
    outputs = [o.name for o in model.graph.output]
    merged = compose.merge_models(tok, model, io_map=io_map, outputs=outputs + [f"tok/{OFFSETS_OUTPUT}"])
    for n in merged.graph.node:
        n.output[:] = [OFFSETS_OUTPUT if x == f"tok/{OFFSETS_OUTPUT}" else x for x in n.output]
    for o in merged.graph.output:
        if o.name == f"tok/{OFFSETS_OUTPUT}":
            o.name = OFFSETS_OUTPUT
    # the model's outputs first (what a caller takes as output 0), the offsets after them
    ordered = sorted(merged.graph.output, key=lambda o: o.name == OFFSETS_OUTPUT)
    del merged.graph.output[:]
    merged.graph.output.extend(ordered)
    versions = {}  # one entry per domain ("" and "ai.onnx" are one)
    for o in merged.opset_import:
        domain = "" if o.domain in ("", "ai.onnx") else o.domain
        versions[domain] = max(versions.get(domain, 0), o.version)
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    merged.graph.name = "string_in"
    onnx.checker.check_model(merged)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(merged, str(out))
    return mode


def tokenizer_session(tokenizer_dir: Path, max_length: int):
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    graph, _ = tokenizer_graph(tokenizer_dir, max_length)
    return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])


def token_ids(session, text: str) -> list[int]:
    return session.run(["input_ids"], {TEXT_INPUT: np.array([text], dtype=object)})[0].reshape(-1).tolist()


def offset_agreement(tokenizer_dir: Path, texts: list[str], max_length: int) -> float:
    """Share of `texts` whose in-graph ids and character spans (offset_mapping) both equal the Python tokenizer's:
    what a token classifier's entities are cut from the text with."""
    hf = _hf_tokenizer(tokenizer_dir)
    session = tokenizer_session(tokenizer_dir, max_length)
    same = 0
    for t in texts:
        ids, spans = session.run(["input_ids", OFFSETS_OUTPUT], {TEXT_INPUT: np.array([t], dtype=object)})
        want = hf(t, truncation=True, max_length=max_length, return_offsets_mapping=True)
        same += (ids.reshape(-1).tolist() == want["input_ids"]
                 and [tuple(o) for o in spans.reshape(-1, 2).tolist()] == [tuple(o) for o in want["offset_mapping"]])
    return same / max(1, len(texts))


def id_agreement(tokenizer_dir: Path, texts: list[str], max_length: int) -> float:
    """Share of `texts` whose in-graph ids equal the Python tokenizer's (truncation=True, max_length)."""
    hf = _hf_tokenizer(tokenizer_dir)
    session = tokenizer_session(tokenizer_dir, max_length)
    same = sum(token_ids(session, t) == hf(t, truncation=True, max_length=max_length)["input_ids"] for t in texts)
    return same / max(1, len(texts))
