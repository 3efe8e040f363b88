// Builds ds-inspect's JSON summary from artifact metadata and renders it as text.
#include "summary.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>

#include "artifact/artifact_info.h"

namespace ds::inspect {
namespace {

using nlohmann::json;

template <typename T>
json list(const flatbuffers::Vector<T>* v) {
  json out = json::array();
  if (v) {
    for (auto x : *v) out.push_back(x);
  }
  return out;
}

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::string enumName(const char* name, int value) {
  return name && *name ? name : "unknown(" + std::to_string(value) + ")";
}

json modelJson(const fb::ModelInfo* m) {
  if (!m) return nullptr;
  return {{"type", str(m->model_type())},
          {"layers", m->num_layers()},
          {"hidden_size", m->hidden_size()},
          {"heads", m->num_attention_heads()},
          {"kv_heads", m->num_key_value_heads()},
          {"head_dim", m->head_dim()},
          {"vocab_size", m->vocab_size()},
          {"parameter_count", m->parameter_count()},
          {"max_position_embeddings", m->max_position_embeddings()},
          {"bos_token_id", m->bos_token_id()},
          {"eos_token_ids", list(m->eos_token_ids())}};
}

json tensorJson(const fb::Tensor& t) {
  json j = {{"name", str(t.name())},
            {"dtype", enumName(fb::EnumNameDType(t.dtype()), t.dtype())},
            {"shape", list(t.shape())},
            {"bytes", t.nbytes()},
            {"segment", t.segment()}};
  if (t.scale() >= 0) j["scale_tensor"] = t.scale();
  if (const fb::SyntheticFill* f = t.synthetic()) {
    j["segment"] = nullptr;  // no bytes in the file
    j["synthetic"] = {{"mean", f->mean()}, {"std", f->std()}, {"stream", f->stream()}};
  }
  if (t.experts() > 0) j["experts"] = t.experts();
  if (t.shards()) j["shards"] = t.shards()->size();
  if (t.tp_rank() > 0) j["tp_rank"] = t.tp_rank();
  // A merged projection names its stacked checkpoint tensors ("q + k + v").
  if (t.source_name() && str(t.source_name()).find(" + ") != std::string::npos)
    j["source"] = str(t.source_name());
  return j;
}

json kvJson(const fb::KVCacheSpec* kv) {
  if (!kv) return nullptr;
  return {{"kind", enumName(fb::EnumNameKVKind(kv->kind()), kv->kind())},
          {"layers", kv->num_layers()},
          {"block_size", kv->block_size()},
          {"kv_heads", kv->kv_heads()},
          {"head_dim", kv->head_dim()},
          {"v_dim", kv->v_dim()},
          {"rank", kv->rank()},
          {"rope_dim", kv->rope_dim()},
          {"dtype", enumName(fb::EnumNameDType(kv->dtype()), kv->dtype())},
          {"bytes_per_token", artifact::kvBytesPerToken(*kv)}};
}

json planJson(const fb::Plan* p) {
  if (!p) return nullptr;
  std::map<std::string, uint64_t> per_kernel;
  uint64_t generated = 0;  // served by Artifact.code (docs/codegen.md)
  uint64_t epilogues = 0;  // library GEMM launches with generated epilogues
  if (p->launches()) {
    for (const fb::Launch* l : *p->launches()) {
      ++per_kernel[enumName(fb::EnumNameKernel(l->kernel()), l->kernel())];
      generated += l->code_symbol() != nullptr;
      epilogues += l->epilogue_symbols() != nullptr;
    }
  }
  return {{"buffers", p->buffers() ? p->buffers()->size() : 0},
          {"launches", p->launches() ? p->launches()->size() : 0},
          {"tp_size", p->tp_size()},
          {"launches_per_kernel", per_kernel},
          {"generated_launches", generated},
          {"generated_epilogues", epilogues},
          {"arena_bytes_per_token", p->arena_bytes_per_token()},
          {"arena_bytes_per_logit_row", p->arena_bytes_per_logit_row()},
          {"kv_cache", kvJson(p->kv_cache())}};
}

std::string humanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f %s (%llu bytes)", v, kUnits[u],
                  static_cast<unsigned long long>(n));
  }
  return buf;
}

// 671026419200 -> "671026419200 (671.03 B)": exact for scripts, scaled for people.
std::string countText(const json& v) {
  if (!v.is_number()) return "-";
  const double n = v.get<double>();
  static const char* kScales[] = {"", " K", " M", " B", " T"};
  double s = n;
  int i = 0;
  while (s >= 1000 && i < 4) {
    s /= 1000;
    ++i;
  }
  if (i == 0) return v.dump();
  char buf[64];
  std::snprintf(buf, sizeof(buf), " (%.2f%s)", s, kScales[i]);
  return v.dump() + buf;
}

std::string shapeText(const json& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + shape[i].dump();
  return s + "]";
}

}  // namespace

json summarize(const artifact::Artifact& a, const SummaryOptions& options) {
  const fb::Artifact& m = *a.meta();
  json j;
  j["file"] = a.path();
  j["file_size"] = a.fileSize();
  j["schema_version"] = m.schema_version();
  j["compiler_version"] = str(m.compiler_version());
  j["source_dir"] = str(m.source_dir());
  j["model"] = modelJson(m.model());
  j["max_context"] = m.model() ? json(m.model()->max_position_embeddings()) : json(nullptr);
  if (const fb::Target* t = m.target()) {
    json features = json::array();
    if (t->features()) {
      for (const flatbuffers::String* f : *t->features()) features.push_back(f->str());
    }
    j["target"] = {{"name", str(t->name())}, {"features", features}};
    // The compiler's #ds.target (artifacts since the target table; absent before).
    if (t->backend()) j["target"]["backend"] = str(t->backend());
    if (t->triple()) j["target"]["triple"] = str(t->triple());
    if (t->cpu()) j["target"]["cpu"] = str(t->cpu());
    if (t->vector_bits()) j["target"]["vector_bits"] = t->vector_bits();
  } else {
    j["target"] = nullptr;
  }

  std::map<std::string, json> dtypes;
  json tensors = json::array();
  const size_t count = m.tensors() ? m.tensors()->size() : 0;
  uint64_t tensor_bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const fb::Tensor& t = *m.tensors()->Get(static_cast<flatbuffers::uoffset_t>(i));
    json& d = dtypes[enumName(fb::EnumNameDType(t.dtype()), t.dtype())];
    if (d.is_null()) d = {{"tensors", 0}, {"bytes", 0}};
    d["tensors"] = d["tensors"].get<uint64_t>() + 1;
    d["bytes"] = d["bytes"].get<uint64_t>() + t.nbytes();
    tensor_bytes += t.nbytes();
    if (options.all_tensors || i < kTensorPreview) tensors.push_back(tensorJson(t));
  }
  j["dtypes"] = dtypes;
  j["tensor_count"] = count;
  j["tensor_bytes"] = tensor_bytes;
  j["tensors"] = tensors;
  j["segments"] = m.segments() ? m.segments()->size() : 0;
  j["weights_bytes"] = artifact::weightBytes(m);
  j["weights_verified"] = options.weights_verified;
  j["synthetic_weights"] = m.synthetic_weights();
  j["int8_activations"] = m.int8_activations();
  j["bf16_activations"] = m.bf16_activations();
  j["fp8_activations"] = m.fp8_activations();
  if (m.synthetic_weights()) j["synthetic_seed"] = m.synthetic_seed();
  j["plan"] = planJson(m.plan());
  json code = json::array();
  if (m.code()) {
    for (const fb::CodeObject* c : *m.code()) {
      json features = json::array();
      if (c->cpu_features())
        for (const auto* f : *c->cpu_features()) features.push_back(f->str());
      json kernels = json::array();
      if (c->kernels())
        for (const fb::KernelResources* k : *c->kernels())
          kernels.push_back({{"name", str(k->name())}, {"registers", k->registers()},
                             {"shared_bytes", k->shared_bytes()}, {"stack_bytes", k->stack_bytes()},
                             {"spill_store_bytes", k->spill_store_bytes()},
                             {"spill_load_bytes", k->spill_load_bytes()}});
      code.push_back({{"target", str(c->target())}, {"triple", str(c->triple())},
                      {"cpu", str(c->cpu())}, {"features", features}, {"bytes", c->size()},
                      {"format", fb::EnumNameCodeFormat(c->format())},
                      {"abi_version", c->abi_version()},
                      {"symbols", c->symbols() ? c->symbols()->size() : 0}, {"kernels", kernels},
                      {"library", c->library()}});
    }
  }
  j["code"] = code;
  j["native_code"] = a.hasNativeCode();
  if (const artifact::SignatureTrailer* sig = a.signature()) {
    artifact::PublicKey key;
    std::copy(std::begin(sig->public_key), std::end(sig->public_key), key.bytes.begin());
    // Against the key the trailer names: shows the file is unchanged since signing; whether
    // that key is trusted is for the reader to decide (--trusted-key).
    j["signature"] = {{"algorithm", "Ed25519"},
                      {"key_id", artifact::keyId(key)},
                      {"public_key", artifact::toHex(key.bytes.data(), key.bytes.size())},
                      {"verifies", a.signatureVerifies()}};
  } else {
    j["signature"] = nullptr;
  }

  json blobs = json::array();
  if (m.tokenizer_files()) {
    for (const fb::Blob* b : *m.tokenizer_files()) {
      blobs.push_back({{"name", str(b->name())}, {"bytes", b->data() ? b->data()->size() : 0}});
    }
  }
  j["tokenizer_files"] = blobs;
  j["chat_template"] = m.chat_template() != nullptr && m.chat_template()->size() > 0;
  j["chat_template_bytes"] = m.chat_template() ? m.chat_template()->size() : 0;
  return j;
}

std::string renderText(const json& s) {
  std::ostringstream o;
  auto field = [&](const char* key, const std::string& value) {
    o << "  " << key << ": " << value << "\n";
  };
  auto num = [](const json& v) { return v.is_null() ? std::string("-") : v.dump(); };

  o << "artifact: " << s["file"].get<std::string>() << "\n";
  field("file size", humanBytes(s["file_size"].get<uint64_t>()));
  field("schema version", num(s["schema_version"]));
  field("compiler", s["compiler_version"].get<std::string>());
  field("source dir", s["source_dir"].get<std::string>());
  if (s["target"].is_null()) {
    field("target", "(none)");
  } else {
    std::string t = s["target"]["name"].get<std::string>();
    const json& f = s["target"]["features"];
    for (size_t i = 0; i < f.size(); ++i) t += (i ? "," : " [") + f[i].get<std::string>();
    field("target", f.empty() ? t : t + "]");
  }

  const json& m = s["model"];
  if (m.is_null()) {
    o << "model: (none)\n";
  } else {
    o << "model: " << m["type"].get<std::string>() << "\n";
    field("layers", num(m["layers"]));
    field("hidden size", num(m["hidden_size"]));
    field("heads", num(m["heads"]));
    field("kv heads", num(m["kv_heads"]));
    field("head dim", num(m["head_dim"]));
    field("vocab size", num(m["vocab_size"]));
    field("parameters", countText(m["parameter_count"]));
    field("max context", num(s["max_context"]));
  }

  if (s.value("synthetic_weights", false))
    o << "weights: synthetic (seed " << num(s["synthetic_seed"]) << "): "
      << humanBytes(s["weights_bytes"].get<uint64_t>())
      << " filled at load (not in the file)\n";
  else
    o << "weights: " << humanBytes(s["weights_bytes"].get<uint64_t>()) << " in "
      << num(s["segments"]) << " segments"
      << (s["weights_verified"].get<bool>() ? " (checksums verified)" : "") << "\n";
  if (s.value("int8_activations", false))
    o << "activations: int8 per block of 32 / 64 columns for int8 / int4 GEMMs (--quant-act int8)\n";
  if (s.value("bf16_activations", false))
    o << "activations: bf16 for bf16 GEMMs (--quant-act bf16)\n";
  if (s.value("fp8_activations", false))
    o << "activations: FP8 E4M3 per 1 x 128 block for FP8 GEMMs on the FP8 tensor cores (--quant-act fp8)\n";
  std::string hist;
  for (const auto& [dtype, d] : s["dtypes"].items()) {
    hist += (hist.empty() ? "" : ", ") + dtype + " x" + num(d["tensors"]) + " (" +
            humanBytes(d["bytes"].get<uint64_t>()) + ")";
  }
  o << "dtypes: " << (hist.empty() ? "(no tensors)" : hist) << "\n";
  o << "tensors: " << num(s["tensor_count"]) << "\n";
  for (const json& t : s["tensors"]) {
    o << "  " << t["name"].get<std::string>() << "  " << t["dtype"].get<std::string>() << "  "
      << shapeText(t["shape"]) << "  " << humanBytes(t["bytes"].get<uint64_t>());
    if (t.contains("shards")) o << "  (" << t["shards"].dump() << " shards)";
    if (t.contains("tp_rank")) o << "  (shard of tp rank " << t["tp_rank"].dump() << ")";
    if (t.contains("source")) o << "  (stacks " << t["source"].get<std::string>() << ")";
    o << "\n";
  }
  const uint64_t shown = s["tensors"].size(), total = s["tensor_count"].get<uint64_t>();
  if (shown < total) {
    o << "  ... " << (total - shown) << " more (--tensors lists all)\n";
  }

  const json& p = s["plan"];
  if (p.is_null()) {
    o << "plan: (none)\n";
  } else {
    o << "plan: " << num(p["buffers"]) << " buffers, " << num(p["launches"]) << " launches";
    if (p["tp_size"] != 1) o << ", tp_size " << num(p["tp_size"]);
    o << "\n";
    for (const auto& [kernel, n] : p["launches_per_kernel"].items()) {
      o << "  " << kernel << ": " << n.dump() << "\n";
    }
    if (p["generated_launches"] != 0)
      o << "  generated kernels serve " << num(p["generated_launches"]) << " of "
        << num(p["launches"]) << " launches"
        << (p["generated_epilogues"] != 0
                ? ", and the epilogues of " + num(p["generated_epilogues"]) + " GEMM launches"
                : std::string())
        << "\n";
    // Present only when the compiler ran memory planning.
    if (p["arena_bytes_per_token"].get<int64_t>() > 0 ||
        p["arena_bytes_per_logit_row"].get<int64_t>() > 0) {
      o << "activation arena: " << num(p["arena_bytes_per_token"]) << " bytes/token, "
        << num(p["arena_bytes_per_logit_row"]) << " bytes/logit row\n";
    }
    const json& kv = p["kv_cache"];
    if (kv.is_null()) {
      o << "kv cache: (none)\n";
    } else {
      o << "kv cache: " << kv["kind"].get<std::string>() << "\n";
      field("layers", num(kv["layers"]));
      field("block size", num(kv["block_size"]));
      if (kv["kind"] == "MLA") {
        field("rank", num(kv["rank"]));
        field("rope dim", num(kv["rope_dim"]));
      } else {
        field("kv heads", num(kv["kv_heads"]));
        field("head dim", num(kv["head_dim"]));
      }
      field("dtype", kv["dtype"].get<std::string>());
      field("bytes per token", num(kv["bytes_per_token"]));
    }
  }

  for (const json& c : s["code"]) {
    if (c["library"].get<bool>()) {
      // The CUDA kernel library ds-compile embedded for a GPU target (docs/cuda.md): one line,
      // ptxas's figures summed up (every kernel's are in --json).
      int max_regs = 0, spilling = 0;
      for (const json& k : c["kernels"]) {
        max_regs = std::max(max_regs, k["registers"].get<int>());
        spilling += k["spill_store_bytes"].get<int64_t>() + k["spill_load_bytes"].get<int64_t>() > 0;
      }
      o << "cuda kernel library: " << c["target"].get<std::string>() << " "
        << c["format"].get<std::string>() << ", " << humanBytes(c["bytes"].get<uint64_t>())
        << ", " << num(c["symbols"]) << " kernels";
      if (!c["kernels"].empty())
        o << "; ptxas: up to " << max_regs << " registers, " << spilling << " of "
          << c["kernels"].size() << " kernels spill";
      o << "\n";
      continue;
    }
    std::string features;
    for (const json& f : c["features"])
      features += (features.empty() ? "" : ",") + f.get<std::string>();
    o << "code: " << c["target"].get<std::string>() << " " << c["triple"].get<std::string>()
      << " " << c["cpu"].get<std::string>() << " [" << features << "], "
      << humanBytes(c["bytes"].get<uint64_t>()) << ", " << num(c["symbols"])
      << " entry points, ABI " << num(c["abi_version"]);
    // Host code is an ELF shared object; only other formats are named (output unchanged).
    if (c["format"] != "ElfSharedObject") o << ", " << c["format"].get<std::string>();
    if (c.value("runs_here", false)) o << " (runs here)";
    o << "\n";
    // GPU code: ptxas's figures per kernel (a spill here costs local-memory traffic).
    for (const json& k : c["kernels"])
      o << "  kernel " << k["name"].get<std::string>() << ": " << num(k["registers"])
        << " registers, " << num(k["shared_bytes"]) << " B shared, " << num(k["stack_bytes"])
        << " B stack, " << num(k["spill_store_bytes"]) << " B spill stores, "
        << num(k["spill_load_bytes"]) << " B spill loads\n";
  }

  std::string files;
  for (const json& b : s["tokenizer_files"]) {
    files += (files.empty() ? "" : ", ") + b["name"].get<std::string>() + " (" +
             humanBytes(b["bytes"].get<uint64_t>()) + ")";
  }
  o << "tokenizer files: " << (files.empty() ? "(none)" : files) << "\n";
  o << "chat template: "
    << (s["chat_template"].get<bool>()
            ? "yes (" + humanBytes(s["chat_template_bytes"].get<uint64_t>()) + ")"
            : std::string("no"))
    << "\n";
  o << "native code: "
    << (s["native_code"].get<bool>()
            ? "yes (runs in the process that loads it: treat the artifact as an executable)"
            : "no")
    << "\n";
  const json& sig = s["signature"];
  if (sig.is_null()) {
    o << "signature: none (unsigned)\n";
  } else {
    o << "signature: " << sig["algorithm"].get<std::string>() << ", key id "
      << sig["key_id"].get<std::string>() << ", "
      << (sig["verifies"].get<bool>() ? "verifies against that key"
                                      : "DOES NOT VERIFY (changed after signing)")
      << "\n";
  }
  return o.str();
}

}  // namespace ds::inspect
