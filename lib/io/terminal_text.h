#pragma once
// Text from outside gaggle (a hub's manifests and pools, a downloaded file's metadata, a
// server's host key) ends up in messages printed on a terminal. A terminal acts on control
// characters: ESC sequences can clear the screen, retitle the window, rewrite earlier lines
// or, on some terminals, answer back into the input; '\r' lets text overwrite what came
// before it on its line. So what gaggle prints is made inert first, as git does with a
// remote's messages: the caller prints the result, never the raw text.
#include <string>
#include <string_view>

namespace gaggle::io {

// `text` with every byte that a terminal would act on, or that is not valid UTF-8, written
// as "\xNN", and the Unicode bidirectional controls (U+202A-U+202E, U+2066-U+2069, which
// reorder what is displayed) written as "\u202E". Kept: printable ASCII, '\n', '\t', and
// every other valid UTF-8 character. C1 controls (U+0080-U+009F) count as controls.
std::string terminal_safe(std::string_view text);

}  // namespace gaggle::io
