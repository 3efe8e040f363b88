// Status: codes, messages and the C ABI round trip.
#include <gtest/gtest.h>

#include "base/status.h"

namespace {

TEST(Status, OkIsNullAcrossTheAbi) {
  ds::Status ok;
  EXPECT_TRUE(ok.isOk());
  ds_status_t c = ok.release();
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(ds_status_code(c), DS_OK);
  EXPECT_STREQ(ds_status_message(c), "");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  ds::Status s = ds::dataLoss("model.safetensors: header length 99 beyond file size 10");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.toString(), "DATA_LOSS: model.safetensors: header length 99 beyond file size 10");
  ds_status_t c = s.release();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ds_status_code(c), DS_DATA_LOSS);
  EXPECT_STREQ(ds_status_message(c), "model.safetensors: header length 99 beyond file size 10");
  ds_status_free(c);
}

TEST(Status, StatusOrHoldsValueOrError) {
  ds::StatusOr<int> v(42);
  ASSERT_TRUE(v.isOk());
  EXPECT_EQ(*v, 42);
  ds::StatusOr<int> e(ds::notFound("tensor 'x' missing"));
  EXPECT_FALSE(e.isOk());
  EXPECT_EQ(e.status().code(), DS_NOT_FOUND);
}

}  // namespace
