// The article's read.py in C++ with shmframe: show the frames of a channel in a window (q
// quits), or print their rate and latency when there is no display.
//
//   show abc                         waits for the writer; q in the window or Ctrl-C quits
//   show abc --frames 100 --headless
//
// The pixels are never copied out of shared memory: cv::imshow reads them through a cv::Mat
// header over the frame, valid while its shmframe::View lives.
#include <shmframe.hpp>

#include <opencv2/highgui.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct MD {  // the article's struct, as write.cpp declares it
  int32_t shape_0, shape_1, shape_2;
  int64_t size, count;
};

volatile std::sig_atomic_t stop = 0;

}  // namespace

int main(int argc, char** argv) {
  std::string name = "abc";
  long frames = 0;
  bool headless = false;
  std::optional<std::chrono::milliseconds> timeout;  // none: wait for the writer forever
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--frames" && i + 1 < argc) frames = std::stol(argv[++i]);
    else if (a == "--headless") headless = true;
    else if (a == "--timeout" && i + 1 < argc)
      timeout = std::chrono::milliseconds(static_cast<long>(std::stod(argv[++i]) * 1000));
    else if (a == "-h" || a == "--help") {
      std::cout << "usage: show [NAME] [--frames N] [--headless] [--timeout S]\n";
      return 0;
    } else name = a;
  }
  bool window = !headless && (std::getenv("DISPLAY") || std::getenv("WAYLAND_DISPLAY"));
  std::signal(SIGINT, [](int) { stop = 1; });

  std::cout << "waiting for channel '" << name << "' ..." << std::endl;
  long n = 0;
  uint64_t missed = 0;
  try {
    shmframe::Reader r(name, timeout);
    r.set_latest_only(window);  // a display wants the newest frame, not every frame
    std::vector<double> latency_us;
    auto t0 = std::chrono::steady_clock::now(), last_report = t0;
    while (!stop && (frames == 0 || n < frames)) {
      // Wake up regularly even without frames, so the window stays responsive and q works.
      std::optional<shmframe::View> v = r.try_next_view(window ? 30ms : 200ms);
      if (!v) {
        if (window && (cv::waitKey(1) & 0xFF) == 'q') break;
        continue;
      }
      if (++n == 1) t0 = std::chrono::steady_clock::now();
      missed += v->missed();
      latency_us.push_back(static_cast<double>(shmframe_monotonic_ns() - v->timestamp_ns()) / 1e3);
      if (window) {
        cv::imshow(name, v->mat());
        if ((cv::waitKey(1) & 0xFF) == 'q') break;
      }
      auto now = std::chrono::steady_clock::now();
      if (now - last_report >= 1s || n == frames) {
        std::vector<size_t> shape = v->shape();
        std::sort(latency_us.begin(), latency_us.end());
        double secs = std::chrono::duration<double>(now - t0).count();
        auto md = v->meta<MD>();
        std::cout << "frame " << v->index() << ": (";
        for (size_t d = 0; d < shape.size(); d++) std::cout << (d ? ", " : "") << shape[d];
        std::cout << ") " << shmframe_dtype_name(v->dtype()) << ", count="
                  << (md ? std::to_string(md->count) : "-") << ", "
                  << (secs > 0 ? static_cast<double>(n - 1) / secs : 0.0) << " fps, latency p50 "
                  << latency_us[latency_us.size() / 2] << " us, missed " << missed << std::endl;
        last_report = now;
        latency_us.clear();
      }
    }
  } catch (const shmframe::Closed&) {
    // the writer closed the channel: the end of the stream
  } catch (const shmframe::WriterGone& e) {
    std::cout << "writer gone: " << e.what() << std::endl;
  } catch (const shmframe::Error& e) {
    std::cerr << e.status_name() << ": " << e.what() << std::endl;
    return 1;
  }
  std::cout << "received " << n << " frames, missed " << missed << std::endl;
  return 0;
}
