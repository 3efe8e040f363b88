// Checkpoint: single-file and sharded (index + weight_map) safetensors checkpoints.
#include "ingest/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <utility>

#include "ingest/json_util.h"

namespace ds {
namespace {

bool isDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string dirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Shard names come from a file we do not trust: keep them inside the checkpoint directory.
bool isSafeShardName(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

uint64_t TensorView::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // validated at open: cannot overflow
  return n;
}

Checkpoint Checkpoint::synthetic(const std::string& source) {
  Checkpoint ckpt;
  ckpt.source_ = source;
  ckpt.synthetic_ = true;
  return ckpt;
}

StatusOr<Checkpoint> Checkpoint::open(const std::string& path) {
  Checkpoint ckpt;
  if (isDirectory(path)) {
    const std::string single = path + "/model.safetensors";
    const std::string index = path + "/model.safetensors.index.json";
    if (exists(single)) {
      DS_RETURN_IF_ERROR(ckpt.openSingle(single));
    } else if (exists(index)) {
      DS_RETURN_IF_ERROR(ckpt.openIndex(index));
    } else {
      return notFound(path + ": no model.safetensors or model.safetensors.index.json in directory");
    }
  } else if (endsWith(path, ".json")) {
    DS_RETURN_IF_ERROR(ckpt.openIndex(path));
  } else {
    DS_RETURN_IF_ERROR(ckpt.openSingle(path));
  }
  ckpt.finish();
  return StatusOr<Checkpoint>(std::move(ckpt));
}

Status Checkpoint::openSingle(const std::string& file) {
  source_ = file;
  StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::open(file);
  if (!opened.isOk()) return opened.status();
  files_.push_back(std::move(opened.value()));
  for (const TensorInfo& info : files_.back()->tensors()) addTensor(*files_.back(), info);
  return Status::ok();
}

Status Checkpoint::openIndex(const std::string& index_path) {
  source_ = index_path;
  sharded_ = true;
  std::string text;
  DS_RETURN_IF_ERROR(readTextFile(index_path, &text));
  nlohmann::json index;
  DS_RETURN_IF_ERROR(parseJsonStrict(text, index_path, &index));
  if (!index.is_object()) return dataLoss(index_path + ": index is not a JSON object");
  auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    return dataLoss(index_path + ": missing 'weight_map' object");
  }
  // Group tensor names by shard so each shard is mapped once, in sorted (deterministic) order.
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it->is_string()) {
      return dataLoss(index_path + ": weight_map['" + it.key() + "'] is not a shard file name");
    }
    const std::string shard = it->get<std::string>();
    if (!isSafeShardName(shard)) {
      return dataLoss(index_path + ": weight_map['" + it.key() + "'] names shard '" + shard +
                      "' outside the checkpoint directory");
    }
    by_shard[shard].push_back(it.key());
  }
  const std::string dir = dirName(index_path);
  for (const auto& entry : by_shard) {
    const std::string shard_path = dir + "/" + entry.first;
    StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::open(shard_path);
    if (!opened.isOk()) {
      if (opened.status().code() == DS_NOT_FOUND) {
        return notFound(index_path + ": shard '" + entry.first + "' (holding tensor '" + entry.second.front() +
                        "') is missing: " + opened.status().message());
      }
      return opened.status();
    }
    files_.push_back(std::move(opened.value()));
    const SafetensorsFile& file = *files_.back();
    for (const std::string& name : entry.second) {
      const TensorInfo* info = file.find(name);
      if (!info) {
        return notFound(index_path + ": tensor '" + name + "' is listed in weight_map but missing from shard '" +
                        entry.first + "'");
      }
      addTensor(file, *info);
    }
  }
  return Status::ok();
}

void Checkpoint::addTensor(const SafetensorsFile& file, const TensorInfo& info) {
  TensorView view;
  view.name = info.name;
  view.dtype = info.dtype;
  view.shape = info.shape;
  view.data = file.data(info);
  view.nbytes = info.nbytes;
  view.file = &file;
  total_bytes_ += info.nbytes;
  tensors_.push_back(std::move(view));
}

void Checkpoint::finish() {
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

StatusOr<TensorView> Checkpoint::get(std::string_view name) const {
  const TensorView* view = find(name);
  if (!view) return notFound(source_ + ": no tensor '" + std::string(name) + "'");
  return *view;
}

}  // namespace ds
