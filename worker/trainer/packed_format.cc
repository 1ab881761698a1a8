#include "worker/trainer/packed_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace wrpn::trainer {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the packed format is little-endian");

constexpr char kMagic[8] = {'W', 'R', 'P', 'N', 'P', 'A', 'K', '1'};
constexpr uint32_t kVersion = 2;  // 2 added the encoding (raw records); 1 still reads
constexpr size_t kHeader = 64, kEntry = 24;
constexpr size_t kMaxClasses = 1 << 20, kMaxNameBytes = 4096;

template <typename T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void Put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
uint32_t Crc(const void* p, size_t n) {
  // zlib's length argument is 32-bit: feed large buffers in pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* b = static_cast<const Bytef*>(p);
  while (n > 0) {
    const uInt k = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, b, k);
    b += k;
    n -= k;
  }
  return static_cast<uint32_t>(crc);
}
absl::Status Corrupt(const std::string& where, const std::string& what) {
  return absl::DataLossError(absl::StrCat(where, ": ", what));
}
std::string Errno() { return std::strerror(errno); }

}  // namespace

const char* PackedSplitName(PackedSplit s) { return s == PackedSplit::kTrain ? "train" : "val"; }
const char* PackedEncodingName(PackedEncoding e) { return e == PackedEncoding::kRaw ? "raw" : "jpeg"; }

absl::StatusOr<std::shared_ptr<const PackedFile>> PackedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open (", Errno(), ")"));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Corrupt(path, "not a regular file");
  }
  std::shared_ptr<PackedFile> f(new PackedFile);
  f->name_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      const std::string err = Errno();
      ::close(fd);
      return Corrupt(path, "cannot memory-map (" + err + ")");
    }
    f->map_ = m;
    f->data_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  RETURN_IF_ERROR(f->Parse());
  return std::shared_ptr<const PackedFile>(std::move(f));
}

absl::StatusOr<std::shared_ptr<const PackedFile>> PackedFile::FromBytes(std::string_view bytes,
                                                                        const std::string& name) {
  std::shared_ptr<PackedFile> f(new PackedFile);
  f->name_ = name;
  f->data_ = reinterpret_cast<const uint8_t*>(bytes.data());
  f->size_ = bytes.size();
  RETURN_IF_ERROR(f->Parse());
  return std::shared_ptr<const PackedFile>(std::move(f));
}

PackedFile::~PackedFile() {
  if (map_) ::munmap(map_, size_);
}

absl::Status PackedFile::Parse() {
  if (size_ < kHeader) {
    return Corrupt(name_, absl::StrCat("truncated: ", size_, " bytes, shorter than the ", kHeader,
                                       "-byte header"));
  }
  if (std::memcmp(data_, kMagic, sizeof kMagic) != 0) {
    return Corrupt(name_, "not a packed dataset (no WRPNPAK1 magic; make one with wrpn-train prepare)");
  }
  if (Get<uint32_t>(data_ + 60) != Crc(data_, 60)) return Corrupt(name_, "header checksum mismatch");
  const uint32_t version = Get<uint32_t>(data_ + 8);
  if (version != 1 && version != kVersion) {
    return Corrupt(name_, absl::StrCat("format version ", version, " (this build reads 1 and ", kVersion, ")"));
  }
  const uint32_t encoding = Get<uint32_t>(data_ + 56);
  if (encoding > 1 || (version == 1 && encoding != 0)) {
    return Corrupt(name_, absl::StrCat("unknown record encoding ", encoding, " (0 = JPEG, 1 = raw)"));
  }
  encoding_ = static_cast<PackedEncoding>(encoding);
  const uint32_t classes = Get<uint32_t>(data_ + 12);
  const uint64_t train = Get<uint64_t>(data_ + 16), val = Get<uint64_t>(data_ + 24);
  const uint64_t index = Get<uint64_t>(data_ + 32), names = Get<uint64_t>(data_ + 40);
  const uint64_t file_size = Get<uint64_t>(data_ + 48);
  if (file_size != size_) {
    return Corrupt(name_, absl::StrCat(size_ < file_size ? "truncated" : "trailing data",
                                       ": header says ", file_size, " bytes, file has ", size_));
  }
  if (classes < 1 || classes > kMaxClasses) return Corrupt(name_, absl::StrCat("implausible class count ", classes));
  if (train > size_ / kEntry || val > size_ / kEntry || index < kHeader || index > size_ ||
      (size_ - index) / kEntry < train + val || names != index + (train + val) * kEntry) {
    return Corrupt(name_, absl::StrCat("index (", train, " train + ", val, " val records at offset ",
                                       index, ") does not fit the file"));
  }
  train_ = static_cast<int64_t>(train);
  val_ = static_cast<int64_t>(val);
  checked_ = std::make_unique<std::atomic<bool>[]>(static_cast<size_t>(train_ + val_));
  index_offset_ = index;
  for (int64_t r = 0; r < train_ + val_; ++r) {
    const uint8_t* e = data_ + index + r * kEntry;
    const uint64_t off = Get<uint64_t>(e);
    const uint32_t len = Get<uint32_t>(e + 8), label = Get<uint32_t>(e + 12);
    const PackedSplit s = r < train_ ? PackedSplit::kTrain : PackedSplit::kVal;
    const int64_t i = r < train_ ? r : r - train_;
    if (off < kHeader || off > index || len > index - off) {
      return Corrupt(Where(s, i), absl::StrCat("bytes ", off, "+", len, " outside the data section"));
    }
    if (label >= classes) {
      return Corrupt(Where(s, i), absl::StrCat("label ", label, " is outside 0..", classes - 1));
    }
    const uint32_t w = Get<uint16_t>(e + 16), h = Get<uint16_t>(e + 18);
    if (w == 0 || h == 0) return Corrupt(Where(s, i), "zero image size");
    if (encoding_ == PackedEncoding::kRaw && len != uint64_t{w} * h * 3) {
      return Corrupt(Where(s, i), absl::StrCat("raw record of ", w, "x", h, " pixels has ", len, " bytes, not ",
                                               uint64_t{w} * h * 3));
    }
  }
  uint64_t p = names;
  class_names_.reserve(classes);
  for (uint32_t k = 0; k < classes; ++k) {
    if (size_ - p < 4) return Corrupt(name_, absl::StrCat("truncated class names (class ", k, ")"));
    const uint32_t len = Get<uint32_t>(data_ + p);
    p += 4;
    if (len > kMaxNameBytes || size_ - p < len) {
      return Corrupt(name_, absl::StrCat("class name ", k, " of ", len, " bytes does not fit"));
    }
    class_names_.emplace_back(reinterpret_cast<const char*>(data_ + p), len);
    p += len;
  }
  if (p != size_) return Corrupt(name_, absl::StrCat(size_ - p, " unexpected bytes after the class names"));
  return absl::OkStatus();
}

std::string PackedFile::Where(PackedSplit s, int64_t i) const {
  return absl::StrCat(name_, ": ", PackedSplitName(s), " record ", i);
}

absl::StatusOr<PackedRecord> PackedFile::Read(PackedSplit s, int64_t i) const {
  if (i < 0 || i >= size(s)) {
    return absl::OutOfRangeError(absl::StrCat(Where(s, i), ": no such record (", size(s), " in the split)"));
  }
  const int64_t r = s == PackedSplit::kTrain ? i : train_ + i;
  const uint8_t* e = data_ + index_offset_ + r * kEntry;
  const uint64_t off = Get<uint64_t>(e);
  const uint32_t len = Get<uint32_t>(e + 8);
  if (!checked_[r].load(std::memory_order_relaxed)) {
    if (Crc(data_ + off, len) != Get<uint32_t>(e + 20)) {
      return Corrupt(Where(s, i), "checksum mismatch (the file is corrupt)");
    }
    checked_[r].store(true, std::memory_order_relaxed);
  }
  PackedRecord rec;
  rec.bytes = std::string_view(reinterpret_cast<const char*>(data_ + off), len);
  rec.label = Get<uint32_t>(e + 12);
  rec.width = Get<uint16_t>(e + 16);
  rec.height = Get<uint16_t>(e + 18);
  return rec;
}

absl::StatusOr<std::unique_ptr<PackedWriter>> PackedWriter::Create(const std::string& path,
                                                                   std::vector<std::string> class_names,
                                                                   PackedEncoding encoding) {
  if (class_names.empty() || class_names.size() > kMaxClasses) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": needs 1..", kMaxClasses, " classes"));
  }
  for (const auto& n : class_names) {
    if (n.size() > kMaxNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": class name longer than ", kMaxNameBytes, " bytes"));
    }
  }
  std::unique_ptr<PackedWriter> w(new PackedWriter);
  w->path_ = path;
  w->tmp_ = absl::StrCat(path, ".tmp-", ::getpid());
  w->class_names_ = std::move(class_names);
  w->encoding_ = encoding;
  w->fd_ = ::open(w->tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return absl::PermissionDeniedError(absl::StrCat(w->tmp_, ": cannot create (", Errno(), ")"));
  const std::string zeros(kHeader, '\0');
  if (::write(w->fd_, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) {
    return w->Fail("write failed");
  }
  w->offset_ = kHeader;
  return w;
}

PackedWriter::~PackedWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!done_) ::unlink(tmp_.c_str());
}

absl::Status PackedWriter::Fail(const std::string& what) {
  const std::string err = Errno();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  return absl::DataLossError(absl::StrCat(tmp_, ": ", what, " (", err, ")"));
}

absl::Status PackedWriter::Add(PackedSplit split, const PackedInput& r) {
  if (fd_ < 0 || done_) return absl::FailedPreconditionError(tmp_ + ": writer is closed");
  if (split == PackedSplit::kTrain && val_ > 0) {
    return absl::FailedPreconditionError(tmp_ + ": train records must come before val records");
  }
  if (r.label < 0 || r.label >= static_cast<int64_t>(class_names_.size()) || r.width < 1 ||
      r.width > 65535 || r.height < 1 || r.height > 65535 || r.bytes.size() > UINT32_MAX ||
      (encoding_ == PackedEncoding::kRaw && r.bytes.size() != size_t{3} * r.width * r.height)) {
    return absl::InvalidArgumentError(absl::StrCat(tmp_, ": ", PackedEncodingName(encoding_), " record has label ",
                                                   r.label, ", size ", r.width, "x", r.height, ", ",
                                                   r.bytes.size(), " bytes"));
  }
  const char* p = r.bytes.data();
  for (size_t left = r.bytes.size(); left > 0;) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail("write failed");
    p += n;
    left -= static_cast<size_t>(n);
  }
  Put<uint64_t>(index_, offset_);
  Put<uint32_t>(index_, static_cast<uint32_t>(r.bytes.size()));
  Put<uint32_t>(index_, static_cast<uint32_t>(r.label));
  Put<uint16_t>(index_, static_cast<uint16_t>(r.width));
  Put<uint16_t>(index_, static_cast<uint16_t>(r.height));
  Put<uint32_t>(index_, Crc(r.bytes.data(), r.bytes.size()));
  offset_ += r.bytes.size();
  ++(split == PackedSplit::kTrain ? train_ : val_);
  return absl::OkStatus();
}

absl::Status PackedWriter::Finish() {
  if (fd_ < 0 || done_) return absl::FailedPreconditionError(tmp_ + ": writer is closed");
  std::string tail = index_;
  for (const auto& n : class_names_) {
    Put<uint32_t>(tail, static_cast<uint32_t>(n.size()));
    tail += n;
  }
  std::string header(kMagic, sizeof kMagic);
  Put<uint32_t>(header, kVersion);
  Put<uint32_t>(header, static_cast<uint32_t>(class_names_.size()));
  Put<uint64_t>(header, static_cast<uint64_t>(train_));
  Put<uint64_t>(header, static_cast<uint64_t>(val_));
  Put<uint64_t>(header, offset_);
  Put<uint64_t>(header, offset_ + index_.size());
  Put<uint64_t>(header, offset_ + tail.size());
  Put<uint32_t>(header, static_cast<uint32_t>(encoding_));
  Put<uint32_t>(header, Crc(header.data(), 60));
  if (::write(fd_, tail.data(), tail.size()) != static_cast<ssize_t>(tail.size())) return Fail("write failed");
  if (::pwrite(fd_, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    return Fail("write failed");
  }
  if (::fsync(fd_) != 0) return Fail("fsync failed");
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Fail("close failed");
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return Fail("cannot rename to " + path_);
  done_ = true;
  return absl::OkStatus();
}

}  // namespace wrpn::trainer
