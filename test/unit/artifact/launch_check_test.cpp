// Crafted artifacts against the launch ABI check: each is refused when opened, with an error
// naming the file and the launch, never a crash (runtime/src/artifact/launch_check.cpp).
#include <gtest/gtest.h>

#include "artifact/artifact_reader.h"
#include "exec/model_runner.h"
#include "artifact_test_util.h"

namespace ds::artifact::testing {
namespace {

using FBB = flatbuffers::FlatBufferBuilder;

// Writes the tiny model with `edit` applied to its launches (bypassing the writer, which would
// refuse it) and opens it.
Status openEdited(const std::string& name, const TinyPlanEdit& edit, std::string* path) {
  const auto specs = TinyModel::tensors();
  std::vector<std::vector<uint8_t>> segments;
  for (size_t i = 0; i < specs.size(); ++i) {
    uint64_t n = specs[i].dtype == fb::DType_F32 ? 4 : specs[i].dtype == fb::DType_F8_E4M3 ? 1 : 2;
    for (int64_t d : specs[i].shape) n *= static_cast<uint64_t>(d);
    segments.push_back(TinyModel::bytes(i, n));
  }
  const std::vector<uint8_t> md = tinyMetadata(assembledSegments(segments), kSchemaVersion, edit);
  *path = freshDir("launch_check") + "/" + name + ".dsa";
  writeFile(*path, assemble(segments, md));
  StatusOr<std::unique_ptr<Artifact>> a = Artifact::open(*path);
  return a.isOk() ? Status::ok() : a.status();
}

TEST(LaunchCheck, TinyPlanIsAccepted) {
  std::string path;
  Status s = openEdited("ok", nullptr, &path);
  EXPECT_TRUE(s.isOk()) << s.toString();
}

// The tiny plan is valid but keeps bf16 activations (a GPU plan): the CPU device refuses it at
// load, naming the buffer, instead of reading bf16 as f32.
TEST(LaunchCheck, CpuDeviceRefusesActivationDtypesItCannotRun) {
  std::string path;
  ASSERT_TRUE(openEdited("bf16", nullptr, &path).isOk());
  auto a = Artifact::open(path);
  ASSERT_TRUE(a.isOk());
  RunnerOptions o;
  o.num_kv_blocks = 2;
  auto r = ModelRunner::create(**a, o);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), DS_UNSUPPORTED);
  EXPECT_NE(r.status().message().find(path + ": plan.buffers[2] holds BF16 activations"),
            std::string::npos)
      << r.status().message();
}

struct Crafted {
  const char* name;
  TinyPlanEdit edit;
  const char* message;
};

class CraftedLaunch : public ::testing::TestWithParam<Crafted> {};

TEST_P(CraftedLaunch, IsRefusedNamingTheLaunch) {
  std::string path;
  Status s = openEdited(GetParam().name, GetParam().edit, &path);
  ASSERT_FALSE(s.isOk()) << GetParam().name;
  EXPECT_EQ(s.code(), DS_DATA_LOSS) << s.toString();
  EXPECT_NE(s.message().find(path + ": invalid artifact metadata: "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find(GetParam().message), std::string::npos) << s.message();
}

// Launch indices: 0 Embed, 1 RmsNorm, 2 QKVRope, 3 Attention, 4 Linear, 5 Add, 6 RmsNorm, 7 Logits.
const Crafted kCrafted[] = {
    {"missing_params",
     [](auto& l) { l[1].params_type = fb::Params_NONE, l[1].params = nullptr; },
     "plan.launches[1] (RmsNorm) has no parameters; it takes NormParams"},
    {"wrong_params",
     [](auto& l) { l[3].params_type = l[1].params_type, l[3].params = l[1].params; },
     "plan.launches[3] (Attention) carries NormParams, the kernel takes AttentionParams"},
    {"layer_past_model",
     [](auto& l) { l[3].params = [](FBB& f) { return fb::CreateAttentionParams(f, 5, 0.5f, 0).Union(); }; },
     "plan.launches[3] (Attention) names KV layer 5 of 1"},
    {"negative_layer",
     [](auto& l) { l[3].params = [](FBB& f) { return fb::CreateAttentionParams(f, -1, 0.5f, 0).Union(); }; },
     "plan.launches[3] (Attention) names KV layer -1 of 1"},
    {"too_few_operands", [](auto& l) { l[3].in = {4, 5, 6}; },
     "plan.launches[3] (Attention) has 3 inputs and 1 outputs; attention(in: q, k, v, positions"},
    {"too_many_outputs", [](auto& l) { l[5].out = {2, 8}; },
     "plan.launches[5] (Add) has 2 inputs and 2 outputs"},
    {"index_operand_kind", [](auto& l) { l[3].in[3] = 2; },
     "plan.launches[3] (Attention) input 'positions' is buffer 2 of dtype BF16, expected I32"},
    {"activation_operand_kind", [](auto& l) { l[5].in[1] = 1; },
     "plan.launches[5] (Add) input 'b' is buffer 1 of dtype I32, expected a float activation"},
    {"absent_required_weight", [](auto& l) { l[4].weights = {-1, 3}; },
     "plan.launches[4] (Linear) weights: required weight slot 'weight' is absent"},
    {"too_many_weights", [](auto& l) { l[4].weights = {4, -1, 4}; },
     "plan.launches[4] (Linear) weights: 3 weights, but linear takes 2"},
    {"bias_group", [](auto& l) { l[2].weights = {2, 2, 2, 1}; },
     "plan.launches[2] (QKVRope) weights: weight slot 'bk' is absent but 'bq' of its group 'bias'"},
    {"weight_shape", [](auto& l) { l[4].weights = {5}; },
     "plan.launches[4] (Linear) maps rows of 8 to 8 elements with a weight of [16, 8]"},
    {"rope_dim", [](auto& l) {
       l[2].params = [](FBB& f) { return fb::CreateRopeParams(f, 10000.0, 6).Union(); }; },
     "plan.launches[2] (QKVRope) rotates 6 channels of heads of 4"},
    {"kv_shape", [](auto& l) { l[3].in = {4, 4, 6, 1}; },
     "plan.launches[3] (Attention) input 'k' has rows of shape [2, 4], expected [1, 4]"},
    {"embed_table_rows", [](auto& l) { l[0].weights = {4}; },
     "plan.launches[0] (Embed) reads a table of 8 rows for a vocabulary of 16"},
    {"vector_slot_given_a_matrix", [](auto& l) { l[1].weights = {4}; },
     "plan.launches[1] (RmsNorm) weight weight is tensor 4 'layers.0.o_proj' of rank 2, expected a vector"},
    {"matrix_slot_given_a_vector", [](auto& l) { l[0].weights = {1}; },
     "plan.launches[0] (Embed) weight weight is tensor 1 'layers.0.input_norm' of rank 1, expected a matrix"},
};

INSTANTIATE_TEST_SUITE_P(Plans, CraftedLaunch, ::testing::ValuesIn(kCrafted),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ds::artifact::testing
