// Module images as the fake driver reads them (fake_cuda_image.h): fatbin container entries, CUDA
// ELF section tables and their .nv.info attributes, PTX entry declarations.
#include "fake_cuda_image.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace fake_cuda {

namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;

template <class T>
T rd(const std::string& s, size_t off) {
  T v{};
  if (off + sizeof(T) <= s.size()) std::memcpy(&v, s.data() + off, sizeof(T));
  return v;
}
template <class T>
T rdp(const uint8_t* p, size_t off) {
  T v{};
  std::memcpy(&v, p + off, sizeof(T));
  return v;
}

// Size of the ELF image at p: the furthest of the section table, program headers and section
// bytes (nothing says how long a cubin is except its headers, which is what the driver reads).
size_t elfSize(const uint8_t* p) {
  const uint64_t phoff = rdp<uint64_t>(p, 32), shoff = rdp<uint64_t>(p, 40);
  const uint16_t phentsize = rdp<uint16_t>(p, 54), phnum = rdp<uint16_t>(p, 56);
  const uint16_t shentsize = rdp<uint16_t>(p, 58), shnum = rdp<uint16_t>(p, 60);
  size_t end = 64;
  end = std::max<size_t>(end, phoff + size_t{phentsize} * phnum);
  end = std::max<size_t>(end, shoff + size_t{shentsize} * shnum);
  for (uint16_t i = 0; i < shnum; ++i) {
    const uint8_t* sh = p + shoff + size_t{i} * shentsize;
    if (rdp<uint32_t>(sh, 4) == 8) continue;  // SHT_NOBITS
    end = std::max<size_t>(end, rdp<uint64_t>(sh, 24) + rdp<uint64_t>(sh, 32));
  }
  return end;
}

int elfArch(const std::string& e) {
  const uint32_t flags = rd<uint32_t>(e, 48);
  // ABI version 8 (CUDA 12.x+) keeps the SM in bits 8..15, older ABIs in bits 0..7.
  const bool abi8 = e.size() > 8 && static_cast<uint8_t>(e[8]) >= 8;
  return static_cast<int>(abi8 ? (flags >> 8) & 0xff : flags & 0xff);
}

int ptxArch(const std::string& ptx) {
  size_t at = ptx.find(".target");
  if (at == std::string::npos) return 0;
  at = ptx.find("sm_", at);
  if (at == std::string::npos) return 0;
  return std::atoi(ptx.c_str() + at + 3);
}

struct Section {
  std::string name;
  uint32_t type = 0;
  uint64_t offset = 0, size = 0;
};

std::vector<Section> sections(const std::string& e) {
  std::vector<Section> out;
  const uint64_t shoff = rd<uint64_t>(e, 40);
  const uint16_t shentsize = rd<uint16_t>(e, 58), shnum = rd<uint16_t>(e, 60), shstrndx = rd<uint16_t>(e, 62);
  if (shentsize < 64 || shoff + size_t{shentsize} * shnum > e.size() || shstrndx >= shnum) return out;
  const uint64_t stroff = rd<uint64_t>(e, shoff + size_t{shstrndx} * shentsize + 24);
  for (uint16_t i = 0; i < shnum; ++i) {
    const size_t sh = shoff + size_t{i} * shentsize;
    Section s;
    const uint32_t name = rd<uint32_t>(e, sh);
    if (stroff + name < e.size()) s.name = e.c_str() + stroff + name;
    s.type = rd<uint32_t>(e, sh + 4);
    s.offset = rd<uint64_t>(e, sh + 24);
    s.size = rd<uint64_t>(e, sh + 32);
    out.push_back(std::move(s));
  }
  return out;
}

// .nv.info.<name>: {u8 format, u8 attribute, value}. Formats: 1 no value, 2 byte, 3 half, 4 a
// u16 size and that many bytes. EIATTR_KPARAM_INFO (0x17): u32 index, u16 ordinal, u16 offset,
// u32 with the size in bits 18..31. EIATTR_MAX_THREADS (0x05): u32 x, y, z.
void readNvInfo(const std::string& e, const Section& s, KernelInfo* info) {
  size_t p = s.offset;
  const size_t end = std::min<size_t>(s.offset + s.size, e.size());
  while (p + 2 <= end) {
    const uint8_t fmt = static_cast<uint8_t>(e[p]), attr = static_cast<uint8_t>(e[p + 1]);
    if (fmt == 1) {
      p += 2;
      continue;
    }
    if (fmt == 2 || fmt == 3) {
      p += 4;
      continue;
    }
    if (fmt != 4) return;
    const uint16_t size = rd<uint16_t>(e, p + 2);
    const size_t v = p + 4;
    if (attr == 0x17 && size >= 12) {
      const uint16_t ordinal = rd<uint16_t>(e, v + 4), offset = rd<uint16_t>(e, v + 6);
      const uint32_t bits = rd<uint32_t>(e, v + 8);
      if (info->params.size() <= ordinal) info->params.resize(size_t{ordinal} + 1);
      info->params[ordinal] = {offset, (bits >> 18) & 0x3fff};
      info->params_known = true;
    } else if (attr == 0x05 && size >= 12) {
      info->max_threads = rd<uint32_t>(e, v) * rd<uint32_t>(e, v + 4) * rd<uint32_t>(e, v + 8);
    }
    p = v + size;
  }
}

bool findInElf(const std::string& e, const std::string& name, KernelInfo* info) {
  bool found = false;
  const Section* nv_info = nullptr;
  const std::vector<Section> secs = sections(e);
  for (const Section& s : secs) {
    if (s.name == ".text." + name) found = true;
    if (s.name == ".nv.info." + name) nv_info = &s;
    if (s.name == ".nv.shared." + name) info->static_shared = static_cast<uint32_t>(s.size);
  }
  if (!found) return false;
  info->params_known = true;  // a kernel without KPARAM_INFO takes no parameters
  if (nv_info) readNvInfo(e, *nv_info, info);
  return true;
}

uint32_t ptxTypeBytes(const std::string& t) {
  if (t == ".pred") return 1;
  size_t i = t.size();
  while (i > 0 && std::isdigit(static_cast<unsigned char>(t[i - 1]))) --i;
  const int bits = std::atoi(t.c_str() + i);
  return bits >= 8 ? static_cast<uint32_t>(bits / 8) : 0;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) out.push_back(cur), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool isIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

bool findInPtx(const std::string& ptx, const std::string& name, KernelInfo* info) {
  for (size_t at = ptx.find(".entry"); at != std::string::npos; at = ptx.find(".entry", at + 6)) {
    size_t p = at + 6;
    while (p < ptx.size() && std::isspace(static_cast<unsigned char>(ptx[p]))) ++p;
    size_t q = p;
    while (q < ptx.size() && isIdent(ptx[q])) ++q;
    if (ptx.compare(p, q - p, name) != 0 || q - p != name.size()) continue;
    while (q < ptx.size() && std::isspace(static_cast<unsigned char>(ptx[q]))) ++q;
    const size_t body = ptx.find('{', q);
    if (q < ptx.size() && ptx[q] == '(') {
      const size_t close = ptx.find(')', q);
      if (close == std::string::npos) return false;
      std::string list = ptx.substr(q + 1, close - q - 1);
      uint32_t offset = 0;
      size_t start = 0;
      while (start < list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        const std::vector<std::string> w = words(list.substr(start, comma - start));
        start = comma + 1;
        if (w.empty() || w[0] != ".param") continue;
        uint32_t elem = 0, align = 0, count = 1;
        bool ptr = false;
        for (size_t k = 1; k < w.size(); ++k) {
          if (w[k] == ".ptr") ptr = true;
          else if (w[k] == ".align" && k + 1 < w.size()) {
            if (!ptr) align = static_cast<uint32_t>(std::atoi(w[k + 1].c_str()));
            ++k;
          } else if (w[k][0] == '.' && !elem) {
            elem = ptxTypeBytes(w[k]);
          } else if (w[k][0] != '.') {
            const size_t br = w[k].find('[');
            if (br != std::string::npos) count = static_cast<uint32_t>(std::atoi(w[k].c_str() + br + 1));
          }
        }
        if (!align) align = elem ? elem : 1;
        offset = (offset + align - 1) / align * align;
        info->params.push_back({offset, elem * count});
        offset += elem * count;
      }
      q = close + 1;
    }
    info->params_known = true;
    const size_t ntid = ptx.find(".maxntid", q);
    if (ntid != std::string::npos && (body == std::string::npos || ntid < body)) {
      uint32_t threads = 1;
      const char* c = ptx.c_str() + ntid + 8;
      for (int dim = 0; dim < 3; ++dim) {
        while (*c == ' ' || *c == '\t' || *c == ',') ++c;
        if (!std::isdigit(static_cast<unsigned char>(*c))) break;
        threads *= static_cast<uint32_t>(std::strtoul(c, const_cast<char**>(&c), 10));
      }
      info->max_threads = threads;
    }
    return true;
  }
  return false;
}

}  // namespace

bool parseImage(const void* data, Image* out, std::string* why) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (!p) {
    *why = "null image";
    return false;
  }
  if (rdp<uint32_t>(p, 0) == kFatbinMagic) {
    out->kind = ImageKind::Fatbin;
    const uint16_t header = rdp<uint16_t>(p, 6);
    const uint64_t size = rdp<uint64_t>(p, 8);
    for (uint64_t at = header; at + 32 <= header + size;) {
      const uint8_t* e = p + at;
      const uint16_t kind = rdp<uint16_t>(e, 0);
      const uint32_t ehead = rdp<uint32_t>(e, 4);
      const uint64_t payload = rdp<uint64_t>(e, 8);
      if (ehead < 32 || (kind != 1 && kind != 2)) {
        *why = "malformed fatbin entry";
        return false;
      }
      CodeEntry c;
      c.elf = kind == 2;
      c.arch = static_cast<int>(rdp<uint32_t>(e, 28));
      c.bytes.assign(reinterpret_cast<const char*>(e + ehead), payload);
      // Compressed entries (zstd / LZ4) cannot be searched; the name check is skipped for them.
      c.readable = c.elf ? c.bytes.compare(0, 4, "\x7f" "ELF") == 0
                         : c.bytes.find(".entry") != std::string::npos;
      if (c.elf && !c.readable) c.elf = false;
      out->entries.push_back(std::move(c));
      at += ehead + payload;
    }
    return true;
  }
  CodeEntry c;
  if (std::memcmp(p, "\x7f" "ELF", 4) == 0) {
    if (p[4] != 2 || rdp<uint16_t>(p, 18) != 190) {
      *why = "not a 64-bit CUDA ELF (EM_CUDA)";
      return false;
    }
    out->kind = ImageKind::Elf;
    c.elf = true;
    c.bytes.assign(reinterpret_cast<const char*>(p), elfSize(p));
    c.arch = elfArch(c.bytes);
  } else {
    out->kind = ImageKind::Ptx;
    c.bytes = reinterpret_cast<const char*>(p);  // PTX is NUL-terminated
    if (c.bytes.find(".version") == std::string::npos || c.bytes.find(".target") == std::string::npos) {
      *why = "neither a fatbin, a CUDA ELF nor PTX text";
      return false;
    }
    c.arch = ptxArch(c.bytes);
  }
  out->entries.push_back(std::move(c));
  return true;
}

int chooseEntry(const Image& image, int major, int minor) {
  int best = -1;
  for (size_t i = 0; i < image.entries.size(); ++i) {
    const CodeEntry& e = image.entries[i];
    if (!e.elf || e.arch / 10 != major || e.arch % 10 > minor) continue;
    if (best < 0 || e.arch > image.entries[static_cast<size_t>(best)].arch) best = static_cast<int>(i);
  }
  if (best >= 0) return best;
  for (size_t i = 0; i < image.entries.size(); ++i) {
    const CodeEntry& e = image.entries[i];
    if (!e.elf && e.arch <= major * 10 + minor &&
        (best < 0 || e.arch > image.entries[static_cast<size_t>(best)].arch))
      best = static_cast<int>(i);
  }
  return best;
}

bool findKernel(const CodeEntry& entry, const std::string& name, KernelInfo* info) {
  *info = KernelInfo{};
  return entry.elf ? findInElf(entry.bytes, name, info) : findInPtx(entry.bytes, name, info);
}

}  // namespace fake_cuda
