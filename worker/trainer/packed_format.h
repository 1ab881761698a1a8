#pragma once
// The packed dataset file (`wrpn-train prepare`): one file holding the resized images of an
// image-folder tree's train and val splits (re-encoded JPEGs, or raw pixels), their labels,
// sizes and checksums, and the class names; read through a memory map. Layout, little-endian:
//
//   header (64 bytes)  "WRPNPAK1", u32 version (2), u32 classes, u64 train records,
//                      u64 val records, u64 index offset, u64 names offset, u64 file size,
//                      u32 encoding (0 JPEG, 1 raw; version 1 files have 0 there),
//                      u32 CRC-32 of the 60 bytes before it
//   records            back to back, from offset 64: JPEG files, or for raw files
//                      width x height x 3 bytes of RGB, rows top to bottom (no decode to read)
//   index              per record (train first, then val), 24 bytes: u64 offset, u32 size,
//                      u32 label, u16 width, u16 height, u32 CRC-32 of the bytes
//   names              per class: u32 length, the name's bytes; ends at the file size
//
// Opening checks the header, the sizes and every index entry; the first read of a record checks
// its CRC-32 (later reads of it in this process do not: the file is immutable once prepare has
// renamed it into place, and a raw record's check costs about a fifth of its sample). Errors
// name the file, and the split and record where one is at fault. A PackedFile is immutable
// after opening (but for the records-checked flags) and safe to read from several threads.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace wrpn::trainer {

enum class PackedSplit { kTrain = 0, kVal = 1 };
const char* PackedSplitName(PackedSplit s);

// How records are stored: JPEG (small; decoded per sample) or raw RGB (w x h x 3 bytes, about
// 10x the JPEG's size at quality 90; no decode).
enum class PackedEncoding : uint32_t { kJpeg = 0, kRaw = 1 };
const char* PackedEncodingName(PackedEncoding e);
struct PackedRecord {
  std::string_view bytes;
  int64_t label = 0;
  int width = 0, height = 0;
};

class PackedFile {
 public:
  // Memory-maps `path`.
  static absl::StatusOr<std::shared_ptr<const PackedFile>> Open(const std::string& path);
  // Parses bytes the caller keeps alive (fuzzing, tests); `name` prefixes errors.
  static absl::StatusOr<std::shared_ptr<const PackedFile>> FromBytes(std::string_view bytes,
                                                                     const std::string& name);
  ~PackedFile();
  PackedFile(const PackedFile&) = delete;
  PackedFile& operator=(const PackedFile&) = delete;

  const std::string& name() const { return name_; }
  PackedEncoding encoding() const { return encoding_; }
  int classes() const { return static_cast<int>(class_names_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  int64_t size(PackedSplit s) const { return s == PackedSplit::kTrain ? train_ : val_; }
  // Record i of split s with its checksum verified.
  absl::StatusOr<PackedRecord> Read(PackedSplit s, int64_t i) const;
  // "FILE: val record 7" for error messages.
  std::string Where(PackedSplit s, int64_t i) const;

 private:
  PackedFile() = default;
  absl::Status Parse();

  std::string name_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // owned mapping, or null for borrowed bytes
  int64_t train_ = 0, val_ = 0;
  uint64_t index_offset_ = 0;
  PackedEncoding encoding_ = PackedEncoding::kJpeg;
  std::vector<std::string> class_names_;
  std::unique_ptr<std::atomic<bool>[]> checked_;  // per record: its CRC-32 matched once
};

// One record to write: JPEG bytes, or raw RGB pixels (width x height x 3) for a raw file.
struct PackedInput {
  std::string bytes;
  int64_t label = 0;
  int width = 0, height = 0;
};

// Writes a packed file atomically: into `path`.tmp-<pid>, flushed and fsync'ed, then renamed
// over `path`; on any error the temporary file is removed and `path` is untouched. Records are
// appended as they come (Add), so memory stays bounded by one record.
class PackedWriter {
 public:
  static absl::StatusOr<std::unique_ptr<PackedWriter>> Create(
      const std::string& path, std::vector<std::string> class_names,
      PackedEncoding encoding = PackedEncoding::kJpeg);
  ~PackedWriter();  // removes the temporary file unless Finish succeeded
  // Train records must all come before val records.
  [[nodiscard]] absl::Status Add(PackedSplit split, const PackedInput& record);
  [[nodiscard]] absl::Status Finish();

 private:
  PackedWriter() = default;
  absl::Status Fail(const std::string& what);

  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  int64_t train_ = 0, val_ = 0;
  PackedEncoding encoding_ = PackedEncoding::kJpeg;
  std::vector<std::string> class_names_;
  std::string index_;
  bool done_ = false;
};

}  // namespace wrpn::trainer
