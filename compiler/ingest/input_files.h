// The files a compile reads, and the rules that keep ds-compile from hanging on or writing over them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/read_file.h"
#include "base/status.h"

namespace ds {

// NOT_FOUND if `path` does not exist; INVALID_ARGUMENT naming the path and what it is (a FIFO, a
// directory, a device) unless it is a regular file (symbolic links are followed). Never opens the
// path, so a FIFO cannot block.
Status requireRegularFile(const std::string& path);

// Whole files are read with ds::readRegularFile (base/read_file.h): a non-blocking open, the
// type checked on the descriptor, so a FIFO gives an error instead of a hang.

// The model folder's files that ds-compile may read (config.json, generation_config.json,
// tokenizer files, chat_template.jinja, every *.safetensors and the index) plus files added
// later (checkpoint shards, --quant-calib), identified by device and inode so that hard links
// and symbolic links to them are recognized.
class InputFiles {
 public:
  // Adds what exists of the model folder's files. A file ds-compile reads by name
  // (config.json, model.safetensors, tokenizer.json, ...) that exists but is not a regular file
  // is an error naming it. `model_dir` may also name one file.
  Status addModelDir(const std::string& model_dir);
  // Adds one input that must exist and be a regular file.
  Status add(const std::string& path);

  // The output rules of ds-compile -o (docs/tools.md): `output` must not exist, or be a regular
  // file that is none of the inputs. A symbolic link is refused (not followed), and so is
  // anything else that is not a regular file (directory, FIFO, device). Errors name `output`
  // and, when it is an input, which one.
  Status checkOutput(const std::string& output) const;

  size_t size() const { return files_.size(); }

 private:
  struct File {
    std::string path;
    dev_t device;
    ino_t inode;
  };
  std::vector<File> files_;
};

}  // namespace ds
