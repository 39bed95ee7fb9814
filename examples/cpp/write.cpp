// The article's write.py in C++ with shmframe: publish the frames of a camera or a video file
// (or a generated test pattern when there is neither) with the article's metadata struct,
// zero-copy: OpenCV decodes straight into shared memory.
//
//   write abc                        camera 0, else a test pattern, until Ctrl-C
//   write abc --video clip.avi       a video file, paced at its frame rate, until it ends
//   write abc --frames 100 --fps 30 --size 640x480
//
// Build: examples/cpp/CMakeLists.txt, or
//   c++ -std=c++17 write.cpp $(pkg-config --cflags --libs shmframe opencv4) -o write
#include <shmframe.hpp>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

namespace {

// The article's metadata struct. Readers get it back (in any language) from the schema.
struct MD {
  int32_t shape_0, shape_1, shape_2;
  int64_t size, count;
};

std::string md_schema() {
  auto field = [](const char* name, const char* dtype, size_t offset) {
    return std::string("{\"name\": \"") + name + "\", \"dtype\": \"" + dtype +
           "\", \"offset\": " + std::to_string(offset) + "}";
  };
  return "{\"type_name\": \"MD\", \"size\": " + std::to_string(sizeof(MD)) +
         ", \"align\": " + std::to_string(alignof(MD)) + ", \"fields\": [" +
         field("shape_0", "int32", offsetof(MD, shape_0)) + ", " +
         field("shape_1", "int32", offsetof(MD, shape_1)) + ", " +
         field("shape_2", "int32", offsetof(MD, shape_2)) + ", " +
         field("size", "int64", offsetof(MD, size)) + ", " +
         field("count", "int64", offsetof(MD, count)) + "]}";
}

// A moving colour gradient with the frame number, drawn straight into `m`.
void test_pattern(cv::Mat& m, int k) {
  for (int y = 0; y < m.rows; y++) {
    auto* row = m.ptr<cv::Vec3b>(y);
    int g = y * 255 / std::max(m.rows - 1, 1);
    for (int x = 0; x < m.cols; x++) {
      int b = (x + 4 * k) % 256;
      row[x] = cv::Vec3b(static_cast<uint8_t>(b), static_cast<uint8_t>(g),
                         static_cast<uint8_t>((b + g) / 2));
    }
  }
  cv::putText(m, "frame " + std::to_string(k), cv::Point(20, 60), cv::FONT_HERSHEY_SIMPLEX, 1.5,
              cv::Scalar(255, 255, 255), 3);
}

volatile std::sig_atomic_t stop = 0;

}  // namespace

int main(int argc, char** argv) {
  std::string name = "abc", video, size = "640x480";
  long frames = 0;
  double fps = 0;
  int camera = 0;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--frames") frames = std::stol(value());
    else if (a == "--fps") fps = std::stod(value());
    else if (a == "--size") size = value();
    else if (a == "--camera") camera = std::stoi(value());
    else if (a == "--video") video = value();
    else if (a == "-h" || a == "--help") {
      std::cout << "usage: write [NAME] [--video FILE | --camera N] [--frames N] [--fps F] "
                   "[--size WxH]\n";
      return 0;
    } else name = a;
  }

  cv::VideoCapture cap;
  if (!video.empty()) cap.open(video);
  else cap.open(camera);
  cv::Mat first;
  bool source = cap.isOpened() && cap.read(first) && !first.empty() && first.type() == CV_8UC3;
  int width, height;
  if (source) {
    width = first.cols, height = first.rows;
    if (fps == 0 && !video.empty()) fps = cap.get(cv::CAP_PROP_FPS);  // play at the file's rate
    std::cout << (video.empty() ? "camera " + std::to_string(camera) : video) << ": " << width
              << "x" << height << std::endl;
  } else {
    if (!video.empty()) {
      std::cerr << "cannot read " << video << std::endl;
      return 1;
    }
    if (std::sscanf(size.c_str(), "%dx%d", &width, &height) != 2) {
      std::cerr << "--size takes WIDTHxHEIGHT" << std::endl;
      return 1;
    }
    if (fps == 0) fps = 30;
    std::cout << "no camera: publishing a " << width << "x" << height << " test pattern at "
              << fps << " fps" << std::endl;
  }
  std::signal(SIGINT, [](int) { stop = 1; });
  std::signal(SIGTERM, [](int) { stop = 1; });

  MD md{height, width, 3, static_cast<int64_t>(width) * height * 3, 0};
  long k = 0;
  try {
    shmframe::Writer w(name, shmframe::WriterOptions()
                                 .schema_json(md_schema())
                                 .capacity(static_cast<size_t>(md.size)));
    std::cout << "writing to channel '" << name << "'; Ctrl-C stops" << std::endl;
    auto next_at = std::chrono::steady_clock::now();
    while (!stop && (frames == 0 || k < frames)) {
      md.count = k + 1;
      shmframe::Loan loan = w.loan(SHMFRAME_U8, {static_cast<size_t>(height),
                                                 static_cast<size_t>(width), 3});
      cv::Mat buf = loan.mat();  // a cv::Mat header over the slot in shared memory
      if (!source) {
        test_pattern(buf, static_cast<int>(k));
      } else if (k == 0) {
        first.copyTo(buf);
      } else {
        if (!cap.read(buf)) break;  // decodes straight into shared memory; the loan is discarded
        if (buf.data != loan.data()) {  // the source changed size: OpenCV reallocated
          std::cerr << "the source's frame size changed; stopping" << std::endl;
          break;
        }
      }
      loan.publish_meta(md);
      k++;
      if (fps > 0) {
        next_at += std::chrono::microseconds(static_cast<long>(1e6 / fps));
        std::this_thread::sleep_until(next_at);
      }
    }
  } catch (const shmframe::Error& e) {
    std::cerr << e.status_name() << ": " << e.what() << std::endl;
    return 1;
  }
  std::cout << "published " << k << " frames; channel removed" << std::endl;
  return 0;
}
