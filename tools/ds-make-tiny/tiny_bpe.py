# A small byte-level BPE trained in pure Python, emitted as Hugging Face tokenizer.json in Qwen2 and DeepSeek-V3 style.
import re
from collections import Counter

# Training text. Small, fixed and ours, so the merges never change with a library version.
CORPUS = """\
Once upon a time, there was a little robot named Pip. Pip lived in a small town by the sea.
Every morning Pip walked to the market and said hello to the baker, the fisher and the old teacher.
One day the teacher asked: "Pip, what is two plus three?" Pip thought for a while and answered, "It is five."
The teacher smiled. "That is right. And what is the capital of France?" "The capital of France is Paris."
They talked about numbers, the weather, the stars and the moon until the sun went down behind the hills.
The children in the town loved to play with Pip. They ran on the beach, built castles of sand and
looked for shells. When it rained they stayed inside and read books about dragons, kings and queens.
def add(a, b):
    return a + b

for i in range(10):
    print(i, add(i, 2))

int main(void) { return 0; }
The model reads the prompt, thinks step by step, and then writes the answer. Let me think about this.
First, we compute the sum: 12 + 34 = 46. Then we multiply it by 2 to get 92. The answer is 92.
User: Can you help me with my homework? Assistant: Of course! What is the question?
In the morning, the weather was cold and the wind was strong, but the people of the town were happy.
"""

# Training pre-split: an ASCII approximation of the runtime regexes (stdlib `re` lacks \\p{L}); merges learnt
# inside these pieces are valid under the real Qwen2 / DeepSeek split patterns as well.
_TRAIN_SPLIT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map; returns (byte, char) in the vocabulary's order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def train_merges(num_merges, text=CORPUS):
    """Classic BPE: repeatedly merge the most frequent adjacent pair; ties go to the smallest pair (a, b)."""
    byte_map = dict(bytes_to_unicode())
    words = Counter()
    for piece in _TRAIN_SPLIT.findall(text):
        words[tuple(byte_map[b] for b in piece.encode("utf-8"))] += 1
    words = dict(words)
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        new_words = {}
        for w, c in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            key = tuple(out)
            new_words[key] = new_words.get(key, 0) + c
        words = new_words
    return merges


def _added(token_id, content, special=True):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def _model(vocab, merges):
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}


def _bos_template(bos, bos_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


BOS_DS = "<｜begin▁of▁sentence｜>"
EOS_DS = "<｜end▁of▁sentence｜>"
PAD_DS = "<｜▁pad▁｜>"
CHAT_DS = [("<｜User｜>", True), ("<｜Assistant｜>", True), ("<think>", False), ("</think>", False)]

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
DSV3_SPLITS = [r"\p{N}{1,3}", "[一-龥\u3040-ゟ゠-ヿ]+",
               r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"
               r" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]


def _split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def qwen2_tokenizer(merges):
    """R1-Distill-Qwen layout: bytes, merges, then Qwen's and DeepSeek's specials as added tokens after them.
    Returns (tokenizer.json dict, {token: id} of the added tokens)."""
    vocab = {}
    for _, ch in bytes_to_unicode():
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    specials = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                (BOS_DS, True), (EOS_DS, True)] + CHAT_DS
    added = [_added(len(vocab) + i, tok, sp) for i, (tok, sp) in enumerate(specials)]
    ids = {a["content"]: a["id"] for a in added}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "NFC"},
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [_split(QWEN2_SPLIT), byte_level]},
           "post_processor": _bos_template(BOS_DS, ids[BOS_DS]),
           "decoder": byte_level, "model": _model(vocab, merges)}
    return tok, ids


def deepseek_tokenizer(merges):
    """DeepSeek-V3 layout: BOS/EOS/PAD are ids 0..2 inside the vocabulary, then bytes and merges, then the chat
    tokens appended. Returns (tokenizer.json dict, {token: id} of the added tokens)."""
    vocab = {BOS_DS: 0, EOS_DS: 1, PAD_DS: 2}
    for _, ch in bytes_to_unicode():
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    added = [_added(0, BOS_DS), _added(1, EOS_DS), _added(2, PAD_DS)]
    added += [_added(len(vocab) + i, tok, sp) for i, (tok, sp) in enumerate(CHAT_DS)]
    ids = {a["content"]: a["id"] for a in added}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": {"type": "Sequence",
                             "pretokenizers": [_split(r) for r in DSV3_SPLITS] + [byte_level]},
           "post_processor": _bos_template(BOS_DS, 0),
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
           "model": _model(vocab, merges)}
    return tok, ids


def tokenizer_config(bos, eos, added_ids, max_len):
    """tokenizer_config.json as DeepSeek ships it (LlamaTokenizerFast over tokenizer.json, BOS prepended)."""
    decoder = {}
    for tok, tid in sorted(added_ids.items(), key=lambda kv: kv[1]):
        decoder[str(tid)] = {"content": tok, "lstrip": False, "normalized": False, "rstrip": False,
                             "single_word": False, "special": not tok.endswith("think>")}
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder,
            "bos_token": bos, "clean_up_tokenization_spaces": False, "eos_token": eos, "legacy": True,
            "model_max_length": max_len, "pad_token": eos, "sp_model_kwargs": {}, "unk_token": None,
            "tokenizer_class": "LlamaTokenizerFast"}
