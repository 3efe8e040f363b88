// InputFiles: regular-file checks without blocking opens, and ds-compile's -o rules.
#include "ingest/input_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ds {
namespace {

Status notRegular(const std::string& path, mode_t mode) {
  return invalidArgument(path + ": is " + fileTypeName(mode) + ", not a regular file");
}

bool endsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Read by name by the importer or the artifact writer (compiler/artifact/TokenizerFiles.cpp).
const char* const kModelFiles[] = {
    "config.json",           "generation_config.json",       "tokenizer.json",
    "tokenizer.model",       "tokenizer_config.json",        "special_tokens_map.json",
    "chat_template.jinja",   "model.safetensors",            "model.safetensors.index.json",
};

}  // namespace

Status requireRegularFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return notFound(path + ": cannot open: " + std::strerror(err));
    return invalidArgument(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) return notRegular(path, st.st_mode);
  return Status::ok();
}

Status InputFiles::add(const std::string& path) {
  DS_RETURN_IF_ERROR(requireRegularFile(path));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return notFound(path + ": cannot open: " + std::strerror(errno));
  files_.push_back({path, st.st_dev, st.st_ino});
  return Status::ok();
}

Status InputFiles::addModelDir(const std::string& model_dir) {
  struct stat st;
  if (::stat(model_dir.c_str(), &st) != 0) return Status::ok();  // the importer names it
  if (!S_ISDIR(st.st_mode)) return add(model_dir);
  for (const char* name : kModelFiles) {
    const std::string path = model_dir + "/" + name;
    if (::lstat(path.c_str(), &st) != 0) continue;
    DS_RETURN_IF_ERROR(add(path));
  }
  // Shards of a sharded checkpoint (more come from the index once it is read: add()).
  DIR* dir = ::opendir(model_dir.c_str());
  if (!dir) return Status::ok();
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (!endsWith(name, ".safetensors") || name == "model.safetensors") continue;
    const std::string path = model_dir + "/" + name;
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      files_.push_back({path, st.st_dev, st.st_ino});
  }
  ::closedir(dir);
  return Status::ok();
}

Status InputFiles::checkOutput(const std::string& output) const {
  struct stat st;
  if (::lstat(output.c_str(), &st) != 0) return Status::ok();  // a new file
  if (S_ISLNK(st.st_mode)) {
    return invalidArgument(output + ": is a symbolic link; ds-compile does not write through "
                                    "links (give the link's target, or remove the link)");
  }
  if (!S_ISREG(st.st_mode)) {
    return invalidArgument(output + ": exists and is " + fileTypeName(st.st_mode) +
                           "; ds-compile writes only new or regular files (-o - prints text "
                           "stages to stdout)");
  }
  for (const File& in : files_) {
    if (in.device == st.st_dev && in.inode == st.st_ino) {
      const std::string what = in.path == output ? std::string("an input of this compile")
                                                 : "the same file as the input " + in.path;
      return invalidArgument(output + ": is " + what + "; ds-compile never writes over its input");
    }
  }
  return Status::ok();
}

}  // namespace ds
