// Native code in artifacts: refusing it runs the library kernels with the same bits and never
// loads the code; a signed artifact whose code was swapped (checksums recomputed) is refused
// under its trusted key and is harmless with native code refused. Also through the C API.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include "artifact/signature.h"
#include "artifact_tamper.h"
#include "ds/runtime.h"
#include "e2e_util.h"
#include "exec/model_runner.h"
#include "hal/cpu/generated_kernels.h"

namespace ds::test {
namespace {

std::vector<int32_t> goldenTokens(const std::string& model) {
  Golden g = loadGolden(model);
  std::vector<int32_t> tokens = g.prompts[2].prompt;
  tokens.insert(tokens.end(), g.prompts[2].generated.begin(), g.prompts[2].generated.end());
  return tokens;
}

// A signed copy of `model`'s artifact (the test artifacts are unsigned).
std::string signedCopy(const std::string& model, const artifact::SecretKey& key) {
  const std::string path = ::testing::TempDir() + "ds_signed_" + model + "_" +
                           std::to_string(::getpid()) + ".dsa";
  EXPECT_TRUE(writeFileBytes(path, readFileBytes(artifactPath(model))));
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  Status s = artifact::signArtifactFile(fd, path, key);
  ::close(fd);
  EXPECT_TRUE(s.isOk()) << s.toString();
  return path;
}

class NativeCode : public ::testing::TestWithParam<const char*> {};

TEST_P(NativeCode, RefusedRunsLibraryKernelsBitIdentically) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  ASSERT_TRUE(art->hasNativeCode()) << "the default build carries generated kernels";
  const std::vector<int32_t> tokens = goldenTokens(GetParam());

  const size_t loaded = generatedCodeObjectsLoaded();
  RunnerOptions ro;
  ro.num_kv_blocks = 8;
  ro.allow_native_code = false;
  auto runner = ModelRunner::create(*art, ro);
  ASSERT_TRUE(runner.isOk()) << runner.status().toString();
  EXPECT_EQ((*runner)->numGeneratedLaunches(), 0u);
  const std::vector<float> refused = teacherForcedLogits(*art, tokens, 3, false);
  const auto refused_tokens = generateGreedy(*art, {tokens}, 16, 512, false);
  EXPECT_EQ(generatedCodeObjectsLoaded(), loaded) << "refused native code was dlopen'ed";

  const std::vector<float> allowed = teacherForcedLogits(*art, tokens, 3, true);
  EXPECT_GT(generatedCodeObjectsLoaded(), loaded) << "the count must see a real load";
  ASSERT_EQ(refused.size(), allowed.size());
  ASSERT_FALSE(refused.empty());
  EXPECT_TRUE(refused == allowed) << "max |diff| " << compareLogits(refused, allowed).diff;
  EXPECT_EQ(refused_tokens, generateGreedy(*art, {tokens}, 16, 512, true));
}

INSTANTIATE_TEST_SUITE_P(Models, NativeCode, ::testing::Values("tiny-llama", "tiny-deepseek-v3"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(SignedNativeCode, SwappedCodeIsRefusedUnderTheKeyAndHarmlessWhenRefused) {
  StatusOr<artifact::KeyPair> keys = artifact::generateKeyPair();
  ASSERT_TRUE(keys.isOk());
  const std::string signed_path = signedCopy("tiny-llama", keys->secret_key);
  artifact::Artifact::Options trusting;
  trusting.trusted_keys = {keys->public_key};
  auto good = artifact::Artifact::open(signed_path, trusting);
  ASSERT_TRUE(good.isOk()) << good.status().toString();

  std::vector<uint8_t> bytes = readFileBytes(signed_path);
  const fb::Artifact* meta = (*good)->meta();
  const uint64_t code_size = meta->segments()->Get(meta->code()->Get(0)->segment())->size();
  ASSERT_EQ(flipCodeByte(&bytes, code_size / 2), "");
  const std::string tampered = signed_path + ".tampered.dsa";
  ASSERT_TRUE(writeFileBytes(tampered, bytes));

  const size_t loaded = generatedCodeObjectsLoaded();
  auto refused = artifact::Artifact::open(tampered, trusting);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), DS_DATA_LOSS);
  EXPECT_NE(refused.status().message().find(tampered + ": the signature by key " +
                                            artifact::keyId(keys->public_key) +
                                            " does not verify"),
            std::string::npos)
      << refused.status().message();

  // Checksums alone do not notice; with native code refused the swapped code never loads and
  // the tokens are the original's.
  auto unchecked = artifact::Artifact::open(tampered);
  ASSERT_TRUE(unchecked.isOk()) << unchecked.status().toString();
  const std::vector<int32_t> prompt = goldenTokens("tiny-llama");
  const auto tampered_tokens = generateGreedy(**unchecked, {prompt}, 16, 512, false);
  EXPECT_EQ(generatedCodeObjectsLoaded(), loaded) << "tampered code was dlopen'ed";
  EXPECT_EQ(tampered_tokens, generateGreedy(**good, {prompt}, 16, 512, true));
  ::unlink(tampered.c_str());
  ::unlink(signed_path.c_str());
}

// The file changes on disk after open() verified its signature (the mapping shows the change):
// the loader hashes the code it copies out and refuses it.
TEST(SignedNativeCode, CodeChangedAfterOpenIsNotLoaded) {
  StatusOr<artifact::KeyPair> keys = artifact::generateKeyPair();
  ASSERT_TRUE(keys.isOk());
  const std::string path = signedCopy("tiny-llama", keys->secret_key);
  artifact::Artifact::Options trusting;
  trusting.trusted_keys = {keys->public_key};
  auto art = artifact::Artifact::open(path, trusting);
  ASSERT_TRUE(art.isOk()) << art.status().toString();
  ASSERT_NE((*art)->verifiedCodeHash(0), nullptr);
  const fb::Artifact* meta = (*art)->meta();
  const uint32_t code_segment = meta->code()->Get(0)->segment();
  const fb::Segment* seg = meta->segments()->Get(code_segment);
  const uint64_t at = seg->offset() + seg->size() / 2;
  const uint8_t flipped =
      static_cast<uint8_t>((*art)->segmentData(code_segment)[seg->size() / 2] ^ 0x01);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(at)), 1);
  ::close(fd);
  ASSERT_EQ((*art)->segmentData(code_segment)[seg->size() / 2], flipped)
      << "the mapping should show the change";

  const size_t loaded = generatedCodeObjectsLoaded();
  RunnerOptions ro;
  ro.num_kv_blocks = 8;
  auto runner = ModelRunner::create(**art, ro);
  ASSERT_FALSE(runner.isOk());
  EXPECT_EQ(runner.status().code(), DS_DATA_LOSS);
  EXPECT_NE(runner.status().message().find("changed after its signature was verified"),
            std::string::npos)
      << runner.status().message();
  EXPECT_EQ(generatedCodeObjectsLoaded(), loaded);
  ::unlink(path.c_str());
}

// The C API: trusted key bytes and allow_native_code on ds_artifact_open_with_options.
std::vector<int32_t> runCApi(ds_artifact_t artifact, const std::vector<int32_t>& prompt) {
  ds_engine_options_t eo;
  ds_engine_options_initialize(&eo);
  eo.kv_cache_bytes = 16ull << 20;
  ds_engine_t engine = nullptr;
  ds_status_t s = ds_engine_create(artifact, &eo, &engine);
  EXPECT_EQ(s, nullptr) << ds_status_message(s);
  if (s) return {};
  ds_request_options_t ro;
  ds_request_options_initialize(&ro);
  ro.max_new_tokens = 12;
  int64_t id = -1;
  EXPECT_EQ(ds_engine_submit(engine, prompt.data(), prompt.size(), &ro, &id), nullptr);
  std::vector<int32_t> out;
  ds_token_event_t ev[4];
  size_t n = 0;
  while (ds_engine_has_work(engine) && ds_engine_step(engine, ev, 4, &n) == nullptr)
    for (size_t i = 0; i < n; ++i) out.push_back(ev[i].token);
  ds_engine_release(engine);
  return out;
}

TEST(CApiTrust, TrustedKeyAndNativeCodeOptions) {
  StatusOr<artifact::KeyPair> keys = artifact::generateKeyPair();
  ASSERT_TRUE(keys.isOk());
  const std::string signed_path = signedCopy("tiny-llama", keys->secret_key);
  const std::string unsigned_path = artifactPath("tiny-llama");
  const std::vector<int32_t> prompt = goldenTokens("tiny-llama");

  ds_artifact_options_t o;
  ds_artifact_options_initialize(&o);
  EXPECT_EQ(o.trusted_public_key, nullptr);
  EXPECT_EQ(o.allow_native_code, 1);
  o.trusted_public_key = keys->public_key.bytes.data();
  o.trusted_public_key_length = 32;

  ds_artifact_t a = nullptr;
  ds_status_t s = ds_artifact_open_with_options(unsigned_path.c_str(), &o, &a);
  EXPECT_EQ(ds_status_code(s), DS_FAILED_PRECONDITION);
  EXPECT_NE(std::string(ds_status_message(s)).find(unsigned_path), std::string::npos);
  EXPECT_EQ(a, nullptr);
  ds_status_free(s);

  o.trusted_public_key_length = 31;
  s = ds_artifact_open_with_options(signed_path.c_str(), &o, &a);
  EXPECT_EQ(ds_status_code(s), DS_INVALID_ARGUMENT);
  ds_status_free(s);
  o.trusted_public_key_length = 32;

  s = ds_artifact_open_with_options(signed_path.c_str(), &o, &a);
  ASSERT_EQ(s, nullptr) << ds_status_message(s);
  const std::vector<int32_t> with_code = runCApi(a, prompt);
  ds_artifact_release(a);

  o.allow_native_code = 0;
  s = ds_artifact_open_with_options(signed_path.c_str(), &o, &a);
  ASSERT_EQ(s, nullptr) << ds_status_message(s);
  const size_t loaded = generatedCodeObjectsLoaded();
  const std::vector<int32_t> without_code = runCApi(a, prompt);
  EXPECT_EQ(generatedCodeObjectsLoaded(), loaded);
  ds_artifact_release(a);
  EXPECT_EQ(with_code.size(), 12u);
  EXPECT_EQ(with_code, without_code);
  ::unlink(signed_path.c_str());
}

}  // namespace
}  // namespace ds::test
