// The C++ side of the cross-language tests (scripts/test.d/65-c.sh), compiled against the
// installed shmframe.hpp with `pkg-config --cflags --libs shmframe opencv4`, -Wall -Wextra -Werror.
//
//   peer read NAME N GO [SOCKET]
//                             receive the test frames of peer.py or peer.c (see tests/c/peer.c)
//                             as Views, Frames and cv::Mat headers; check every value and the
//                             metadata. With SOCKET: connect to the writer serving it
//   peer make-video FILE N    write an N-frame 160x120 MJPEG clip (top half gray 16+6k, bottom
//                             half BGR (250-6k, 128, 16+6k)) for examples/cpp/write.cpp to decode
//   peer mat DIR              cv::Mat in and out in one process: every depth and channel count,
//                             ROIs, N-d mats, loans, exceptions; a socket-served channel in the
//                             existing directory DIR (left empty)
#include <shmframe.hpp>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

int failures = 0;

#define CHECK(cond, what)                                                           \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::cerr << "peer.cpp:" << __LINE__ << ": " #cond ": " << what << std::endl; \
      failures++;                                                                   \
    }                                                                               \
  } while (0)

struct TestMeta {
  uint32_t index;
  int32_t pad;
  double value;
  uint8_t tag[4];
};
static_assert(sizeof(TestMeta) == 24, "TestMeta is the 24-byte struct of peer.c");

template <class Frameish>
void check_frame(uint64_t k, Frameish& f, const cv::Mat& m) {
  if (k % 2 == 0) {
    CHECK(f.dtype() == SHMFRAME_U8 && f.shape() == std::vector<size_t>({12, 16, 3}),
          "frame " << k << ": dtype/shape");
    CHECK(m.rows == 12 && m.cols == 16 && m.type() == CV_8UC3, "frame " << k << ": mat " << m.size);
    bool same = true;
    for (int y = 0; y < m.rows; y++)
      for (int x = 0; x < m.cols; x++)
        for (int c = 0; c < 3; c++)
          same &= m.at<cv::Vec3b>(y, x)[c] == (7 * k + (y * 16 + x) * 3 + c) % 251;
    CHECK(same, "frame " << k << ": pixels differ");
  } else {
    CHECK(f.dtype() == SHMFRAME_F32 && f.shape() == std::vector<size_t>({5, 7}),
          "frame " << k << ": dtype/shape");
    CHECK(m.rows == 5 && m.cols == 7 && m.type() == CV_32FC1, "frame " << k << ": mat " << m.size);
    bool same = true;
    for (int y = 0; y < m.rows; y++)
      for (int x = 0; x < m.cols; x++)
        same &= m.at<float>(y, x) == static_cast<float>(k) + static_cast<float>(y * 7 + x) / 4.0f;
    CHECK(same, "frame " << k << ": values differ");
  }
  auto meta = f.template meta<TestMeta>();
  CHECK(meta && meta->index == k && meta->value == static_cast<double>(k) / 2 &&
            meta->tag[0] == 's' && meta->tag[1] == 'f' && meta->tag[2] == k,
        "frame " << k << ": metadata");
}

int role_read(const std::string& name, uint64_t n, const std::string& go,
              const std::string& sock) {
  try {
    shmframe::prefer_low_latency();  // a hint: older kernels say so, and the reader works anyway
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_UNSUPPORTED, "prefer_low_latency: " << e.status_name());
  }
  shmframe::Reader r = sock.empty() ? shmframe::Reader(name, 30s) : shmframe::Reader::connect(sock, 30s);
  auto schema = r.schema_json();
  CHECK(schema && schema->find("\"type_name\":\"TestMeta\"") != std::string::npos,
        "schema " << schema.value_or("(none)"));
  shmframe::Frame frame;
  uint64_t got = 0;
  try {
    for (;;) {
      uint64_t index, missed;
      if (got % 2 == 0) {
        shmframe::View v = r.next_view(10s);
        index = v.index(), missed = v.missed();
        check_frame(index, v, v.mat());
      } else {
        r.next(frame, 10s);
        index = frame.index(), missed = frame.missed();
        check_frame(index, frame, frame.mat());
      }
      CHECK(index == got && missed == 0, "frame " << got << " arrived as " << index);
      if (++got == 1) std::ofstream(go).close();
      if (got == n) std::ofstream(go + ".done").close();  // the writer closes now (see peer.c)
    }
  } catch (const shmframe::Closed& e) {
    CHECK(e.status() == SHMFRAME_CLOSED, e.status_name());
  }
  CHECK(got == n, "received " << got << " of " << n << " frames");
  std::cout << "peer.cpp read: " << got << " frames checked" << (sock.empty() ? "" : " through ")
            << sock << std::endl;
  return failures ? 1 : 0;
}

int role_make_video(const std::string& file, int n) {
  cv::VideoWriter out(file, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 30, cv::Size(160, 120));
  if (!out.isOpened()) {
    std::cerr << "peer.cpp: cannot write " << file << std::endl;
    return 1;
  }
  for (int k = 0; k < n; k++) {
    cv::Mat img(120, 160, CV_8UC3);
    img(cv::Rect(0, 0, 160, 60)).setTo(cv::Scalar(16 + 6 * k, 16 + 6 * k, 16 + 6 * k));
    img(cv::Rect(0, 60, 160, 60)).setTo(cv::Scalar(250 - 6 * k, 128, 16 + 6 * k));
    out.write(img);
  }
  return 0;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  if (a.total() * a.elemSize() != b.total() * b.elemSize()) return false;
  cv::Mat ca = a.isContinuous() ? a : a.clone(), cb = b.isContinuous() ? b : b.clone();
  return std::memcmp(ca.data, cb.data, ca.total() * ca.elemSize()) == 0;
}

// A socket-served channel: WriterOptions::socket and Reader::connect, and their exceptions.
void socket_channel(const std::string& name, const std::string& dir) {
  std::string sock = dir + "/mat.sock";
  try {
    (void)shmframe::Reader::connect(sock);
    CHECK(false, "connected to a missing socket");
  } catch (const shmframe::NotFound& e) {
    CHECK(e.status() == SHMFRAME_NOT_FOUND && std::strstr(e.what(), sock.c_str()), e.what());
  }
  try {
    shmframe::WriterOptions().socket("");
    CHECK(false, "an empty socket path was accepted");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_INVALID_ARGUMENT, e.what());
  }
  shmframe::Writer w(name + "-sock", shmframe::WriterOptions().slots(4).socket(sock));
  shmframe::Reader r = shmframe::Reader::connect(sock, 1s);
  cv::Mat m(6, 8, CV_16UC3);
  cv::randu(m, 0, 65535);
  w.write(m);
  shmframe::View v = r.next_view(1s);
  CHECK(same_bytes(v.mat(), m) && v.mat().type() == CV_16UC3, "a cv::Mat through the socket");
  try {
    shmframe::Writer again(name + "-sock2", shmframe::WriterOptions().socket(sock));
    CHECK(false, "two writers on one socket");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_BUSY, e.what());
  }
  w.close();
  struct stat st;
  CHECK(stat(sock.c_str(), &st) != 0, "socket left after close");
  try {
    (void)r.next_view(1s);
    CHECK(false, "no Closed after close");
  } catch (const shmframe::Closed& e) {
    CHECK(e.status() == SHMFRAME_CLOSED, e.what());
  }
}

int role_mat(const std::string& dir) {
  std::string name = "sft-cpp-mat-" + std::to_string(getpid());
  shmframe::Writer w(name, shmframe::WriterOptions().slots(4));
  shmframe::Reader r(name);
  cv::RNG rng(7);

  // Every depth both sides know, 1 to 4 channels.
  for (int depth : {CV_8U, CV_8S, CV_16U, CV_16S, CV_32S, CV_32F, CV_64F}) {
    for (int cn = 1; cn <= 4; cn++) {
      cv::Mat m(9, 13, CV_MAKETYPE(depth, cn));
      rng.fill(m, cv::RNG::UNIFORM, 0, 100);
      w.write(m);
      shmframe::View v = r.next_view(1s);
      std::vector<size_t> want = {9, 13};
      if (cn > 1) want.push_back(static_cast<size_t>(cn));
      CHECK(v.shape() == want, "depth " << depth << " x" << cn << ": shape");
      cv::Mat back = v.mat();
      CHECK(back.type() == m.type() && back.size == m.size && same_bytes(back, m),
            "depth " << depth << " x" << cn << ": round trip");
      CHECK(back.data == v.data(), "the mat is not over shared memory");
    }
  }

  // An ROI (not continuous) and a column range of it.
  cv::Mat big(40, 50, CV_8UC3);
  rng.fill(big, cv::RNG::UNIFORM, 0, 255);
  for (cv::Mat roi : {big(cv::Rect(3, 4, 20, 10)), big.col(7), big(cv::Rect(1, 1, 1, 1))}) {
    CHECK(!roi.isContinuous() || roi.total() == 1, "the ROI should not be continuous");
    w.write(roi);
    shmframe::View v = r.next_view(1s);
    CHECK(v.mat().size == roi.size && same_bytes(v.mat(), roi), "ROI " << roi.size);
  }
  // A non-continuous N-d mat: every other plane of a 3-d volume.
  int sizes[3] = {6, 5, 7};
  cv::Mat vol(3, sizes, CV_16UC1);
  rng.fill(vol, cv::RNG::UNIFORM, 0, 60000);
  cv::Range ranges[3] = {cv::Range(1, 4), cv::Range::all(), cv::Range(2, 6)};
  cv::Mat sub = vol(ranges);
  CHECK(!sub.isContinuous(), "3-d sub-volume should not be continuous");
  w.write(sub);
  {
    shmframe::View v = r.next_view(1s);
    CHECK(v.shape() == std::vector<size_t>({3, 5, 4}), "3-d shape");
    // {3, 5, 4} comes back as a 3x5 mat of 4 channels: the same bytes.
    cv::Mat back = v.mat();
    CHECK(back.rows == 3 && back.cols == 5 && back.channels() == 4, "3-d as 4 channels");
    CHECK(same_bytes(back, sub.clone()), "3-d bytes");
  }

  // Zero-copy writing: a cv::Mat over the loan.
  {
    shmframe::Loan l = w.loan(SHMFRAME_U8, {8, 8, 3});
    cv::Mat m = l.mat();
    m.setTo(cv::Scalar(1, 2, 3));
    CHECK(m.data == l.data(), "loan mat over shared memory");
    uint64_t index = l.publish();
    CHECK(index == w.frames_published() - 1, "loan index");
    shmframe::Frame f = r.next(1s);
    CHECK(f.mat().at<cv::Vec3b>(7, 7) == cv::Vec3b(1, 2, 3), "loan pixels");
    CHECK(!f.meta<TestMeta>().has_value(), "metadata on a channel without a schema");
  }
  {  // an unpublished loan is discarded
    shmframe::Loan l = w.loan(SHMFRAME_U8, {2});
  }
  CHECK(!r.try_next_view(0ms).has_value(), "a discarded loan published something");

  // Typed writes and dtypes OpenCV does not have.
  uint64_t big_values[3] = {1, 2, 3};
  w.write<uint64_t>({3}, big_values);
  {
    shmframe::View v = r.next_view(1s);
    CHECK(v.as<uint64_t>()[2] == 3, "uint64 values");
    try {
      (void)v.mat();
      CHECK(false, "a uint64 frame became a cv::Mat");
    } catch (const shmframe::Error& e) {
      CHECK(e.status() == SHMFRAME_INVALID_ARGUMENT, e.what());
    }
  }

  // Exceptions carry the status and the message.
  try {
    cv::Mat half(2, 2, CV_16FC1);
    w.write(half);
    CHECK(false, "CV_16F was accepted");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_INVALID_ARGUMENT && std::strstr(e.what(), "depth"), e.what());
  }
  try {
    w.write(cv::Mat());
    CHECK(false, "an empty mat was accepted");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_INVALID_ARGUMENT, e.what());
  }
  try {
    shmframe::Reader missing("sft-cpp-no-such-channel");
    CHECK(false, "opened a missing channel");
  } catch (const shmframe::NotFound& e) {
    CHECK(e.status() == SHMFRAME_NOT_FOUND && std::strstr(e.what(), "does not exist"), e.what());
  }
  try {
    shmframe::Writer again(name);
    CHECK(false, "two writers on one channel");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_BUSY && std::string(e.status_name()) == "SHMFRAME_BUSY", e.what());
  }
  try {
    (void)r.next_view(0ms);
    CHECK(false, "no timeout");
  } catch (const shmframe::Timeout& e) {
    CHECK(e.status() == SHMFRAME_TIMEOUT, e.what());
  }
  try {
    shmframe::WriterOptions().slots(0);
    CHECK(false, "0 slots accepted");
  } catch (const shmframe::Error& e) {
    CHECK(e.status() == SHMFRAME_INVALID_ARGUMENT, e.what());
  }

  // Moving handles; closing ends the stream.
  shmframe::Writer moved = std::move(w);
  moved.write(cv::Mat(1, 1, CV_8UC1, cv::Scalar(9)));
  CHECK(r.next_view(1s).mat().at<uint8_t>(0, 0) == 9, "moved writer");
  moved.close();
  try {
    (void)r.next_view(1s);
    CHECK(false, "no Closed after close");
  } catch (const shmframe::Closed& e) {
    CHECK(e.status() == SHMFRAME_CLOSED, e.what());
  }
  socket_channel(name, dir);
  std::cout << "peer.cpp mat: cv::Mat round trips and exceptions, " << failures << " failed"
            << std::endl;
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string role = argc > 1 ? argv[1] : "";
    if (role == "read" && argc >= 5)
      return role_read(argv[2], std::stoull(argv[3]), argv[4], argc >= 6 ? argv[5] : "");
    if (role == "make-video" && argc >= 4) return role_make_video(argv[2], std::stoi(argv[3]));
    if (role == "mat" && argc >= 3) return role_mat(argv[2]);
  } catch (const shmframe::Error& e) {
    std::cerr << "peer.cpp: " << e.status_name() << ": " << e.what() << std::endl;
    return 1;
  }
  std::cerr << "usage: peer read NAME N GO [SOCKET] | make-video FILE N | mat DIR" << std::endl;
  return 2;
}
