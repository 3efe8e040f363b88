// A model checkpoint directory: model.safetensors or model.safetensors.index.json plus its shards.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "format/dtype.h"
#include "ingest/safetensors.h"

namespace ds {

// A zero-copy view of one tensor; valid as long as the Checkpoint that produced it.
struct TensorView {
  std::string_view name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  const SafetensorsFile* file = nullptr;

  uint64_t numel() const;
};

class Checkpoint {
 public:
  // `path` is a model directory (model.safetensors is preferred over the index, as Hugging Face
  // does), a .safetensors file, or a *.safetensors.index.json. Only headers are read.
  static StatusOr<Checkpoint> open(const std::string& path);

  // No tensors and no files: the importer declares every weight from the config's shapes
  // (ds-compile --weights random). `source` names it in messages (the config file).
  static Checkpoint synthetic(const std::string& source);

  Checkpoint() = default;
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;

  // nullptr if absent.
  const TensorView* find(std::string_view name) const;
  // NOT_FOUND naming the checkpoint and the tensor if absent.
  StatusOr<TensorView> get(std::string_view name) const;
  // All tensors sorted by name: a deterministic order independent of shard layout.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  std::vector<TensorView>::const_iterator begin() const { return tensors_.begin(); }
  std::vector<TensorView>::const_iterator end() const { return tensors_.end(); }
  size_t size() const { return tensors_.size(); }
  uint64_t totalBytes() const { return total_bytes_; }
  bool sharded() const { return sharded_; }
  // What was opened (the file, or the index for a sharded checkpoint).
  const std::string& source() const { return source_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Made by synthetic(): weights come from the config, their values from the runtime's fill.
  bool isSynthetic() const { return synthetic_; }

 private:
  Status openSingle(const std::string& file);
  Status openIndex(const std::string& index_path);
  void addTensor(const SafetensorsFile& file, const TensorInfo& info);
  void finish();

  std::string source_;
  bool sharded_ = false;
  bool synthetic_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<TensorView> tensors_;
  uint64_t total_bytes_ = 0;
};

}  // namespace ds
