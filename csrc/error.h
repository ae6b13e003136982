// The C entry points' error convention: run `f`; return null, or libtorch's message (without
// its backtrace) for an exception, valid until the next call on this thread.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

template <typename F>
const char* resnetc_guarded(const F& f) {
  thread_local std::string message;
  try {
    f();
    return nullptr;
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    message = e.what();
  }
  return message.c_str();
}
