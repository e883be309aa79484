// CPU time of the calling thread: time slices lost to other processes on a loaded machine do not
// count, so a single-thread benchmark reads the same on a busy build machine as on an idle one.
#pragma once

#include <time.h>

inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
