#include <catch2/catch.hpp>

#include <string>

#include "io/terminal_text.h"

using gaggle::io::terminal_safe;

TEST_CASE("terminal_safe keeps printable text, newlines, tabs and UTF-8", "[io][terminal]") {
  CHECK(terminal_safe("expert sst2@1.0.0: 'name' is not a string") == "expert sst2@1.0.0: 'name' is not a string");
  CHECK(terminal_safe("line one\n\tline two") == "line one\n\tline two");
  CHECK(terminal_safe("Übersetzung — 翻訳 🦢") == "Übersetzung — 翻訳 🦢");
  CHECK(terminal_safe("a\\x1b stays as typed") == "a\\x1b stays as typed");
  CHECK(terminal_safe("") == "");
}

TEST_CASE("terminal_safe escapes what a terminal would act on", "[io][terminal]") {
  // Clear the screen, then retitle the window (OSC ... BEL).
  CHECK(terminal_safe("\x1b[2J\x1b]0;pwned\x07") == "\\x1B[2J\\x1B]0;pwned\\x07");
  // A carriage return that would let the rest overwrite the start of the line.
  CHECK(terminal_safe("bad key\rgood key") == "bad key\\x0Dgood key");
  CHECK(terminal_safe(std::string("nul\0byte", 8)) == "nul\\x00byte");
  CHECK(terminal_safe("del\x7f") == "del\\x7F");
  // C1 controls: CSI (U+009B) in UTF-8, and as a lone 8-bit byte.
  CHECK(terminal_safe("\xc2\x9b"
                      "2J") == "\\xC2\\x9B2J");
  CHECK(terminal_safe("\x9b"
                      "2J") == "\\x9B2J");
  // U+0085 NEL is a control too; U+00A0 (no-break space) is not.
  CHECK(terminal_safe("\xc2\x85|\xc2\xa0") == "\\xC2\\x85|\xc2\xa0");
}

TEST_CASE("terminal_safe escapes invalid UTF-8 byte by byte", "[io][terminal]") {
  CHECK(terminal_safe("\xff\xfe") == "\\xFF\\xFE");
  CHECK(terminal_safe("\xc0\xaf") == "\\xC0\\xAF");                    // overlong '/'
  CHECK(terminal_safe("\xed\xa0\x80") == "\\xED\\xA0\\x80");           // a UTF-16 surrogate
  CHECK(terminal_safe("\xf4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");  // past U+10FFFF
  CHECK(terminal_safe("cut \xe2\x82") == "cut \\xE2\\x82");            // truncated at the end
  CHECK(terminal_safe("\xe2x") == "\\xE2x");                           // a lead byte without its continuation
}

TEST_CASE("terminal_safe shows bidirectional controls instead of obeying them", "[io][terminal]") {
  // U+202E RIGHT-TO-LEFT OVERRIDE would display "exe.txt" for "txt.exe".
  CHECK(terminal_safe("file\xe2\x80\xae"
                      "txt.exe") == "file\\u202Etxt.exe");
  CHECK(terminal_safe("\xe2\x81\xa6x\xe2\x81\xa9") == "\\u2066x\\u2069");
  CHECK(terminal_safe("\xe2\x80\x94") == "\xe2\x80\x94");  // U+2014 EM DASH, next to them, is kept
}
