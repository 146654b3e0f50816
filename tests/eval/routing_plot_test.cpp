#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <cstring>
#include <set>

#include "eval/routing_plot.h"
#include "support/test_support.h"

using namespace gaggle;
using gaggle::test::TempDir;

namespace {

// Three experts, two encoder and two decoder layers, each with two modules.
eval::TaskRouting sample_routing() {
  eval::TaskRouting r;
  r.method = "PHATGOOSE";
  r.task = "rte";
  r.benchmark = "t0";
  r.experts = {"a@1.0.0", "b@1.0.0", "c@1.0.0"};
  r.counts["encoder.block.0.layer.0.SelfAttention.q"] = {6, 2, 0};
  r.counts["encoder.block.0.layer.1.DenseReluDense.wi"] = {2, 6, 0};
  r.counts["encoder.block.1.layer.0.SelfAttention.q"] = {0, 0, 8};
  r.counts["encoder.block.1.layer.1.DenseReluDense.wi"] = {0, 0, 8};
  r.counts["decoder.block.0.layer.0.SelfAttention.q"] = {1, 1, 2};
  r.counts["decoder.block.1.layer.2.DenseReluDense.wo"] = {4, 0, 0};
  r.counts["lm_head"] = {9, 9, 9};  // not a block: left out
  return r;
}

// --- a minimal PNG reader: 8-bit RGB or RGBA, non-interlaced, zlib through libz.so.1 ---
struct Image {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // width * height * 3
};

std::uint32_t be32(const std::string& s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

Image decode_png(const std::string& png) {
  REQUIRE(png.size() > 33);
  REQUIRE(png.compare(1, 3, "PNG") == 0);
  Image img;
  int channels = 0;
  std::string idat;
  for (std::size_t at = 8; at + 8 <= png.size();) {
    const std::uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      img.width = be32(png, at + 8);
      img.height = be32(png, at + 12);
      REQUIRE(std::uint8_t(png[at + 16]) == 8);  // bit depth
      const int color = std::uint8_t(png[at + 17]);
      REQUIRE((color == 2 || color == 6));
      channels = color == 2 ? 3 : 4;
      REQUIRE(std::uint8_t(png[at + 20]) == 0);  // not interlaced
    } else if (type == "IDAT") {
      idat += png.substr(at + 8, len);
    }
    at += 12 + len;
  }
  REQUIRE(channels > 0);
  void* z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  REQUIRE(z != nullptr);
  using Uncompress = int (*)(unsigned char*, unsigned long*, const unsigned char*, unsigned long);
  auto uncompress = reinterpret_cast<Uncompress>(dlsym(z, "uncompress"));
  REQUIRE(uncompress != nullptr);
  const std::size_t stride = std::size_t(img.width) * channels;
  std::vector<std::uint8_t> raw((stride + 1) * img.height);
  unsigned long raw_len = raw.size();
  REQUIRE(uncompress(raw.data(), &raw_len, reinterpret_cast<const unsigned char*>(idat.data()), idat.size()) == 0);
  REQUIRE(raw_len == raw.size());
  std::vector<std::uint8_t> prev(stride, 0), cur(stride);
  img.rgb.reserve(std::size_t(img.width) * img.height * 3);
  for (std::uint32_t y = 0; y < img.height; ++y) {
    const std::uint8_t filter = raw[y * (stride + 1)];
    const std::uint8_t* in = &raw[y * (stride + 1) + 1];
    for (std::size_t x = 0; x < stride; ++x) {
      const int a = x >= std::size_t(channels) ? cur[x - channels] : 0;
      const int b = prev[x];
      const int c = x >= std::size_t(channels) ? prev[x - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
          break;
        }
        default: FAIL("bad PNG filter");
      }
      cur[x] = static_cast<std::uint8_t>(in[x] + pred);
    }
    for (std::uint32_t x = 0; x < img.width; ++x)
      for (int k = 0; k < 3; ++k) img.rgb.push_back(cur[x * channels + k]);
    std::swap(prev, cur);
  }
  return img;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

std::vector<std::string> chromium_args(const std::filesystem::path& profile) {
  return {"chromium",
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          "--user-data-dir=" + profile.string()};
}

}  // namespace

TEST_CASE("routing shares are aggregated per layer, encoder then decoder", "[eval][routing_plot]") {
  auto fig = eval::routing_figure(sample_routing(), "b");
  REQUIRE(fig.layers.size() == 4);
  CHECK(fig.layers[0].stack == "encoder");
  CHECK(fig.layers[0].layer == 0);
  CHECK(fig.layers[0].slots == 16);
  CHECK(fig.layers[0].share == std::vector<double>{0.5, 0.5, 0.0});
  CHECK(fig.layers[1].share == std::vector<double>{0.0, 0.0, 1.0});
  CHECK(fig.layers[2].stack == "decoder");
  CHECK(fig.layers[2].share == std::vector<double>{0.25, 0.25, 0.5});
  CHECK(fig.layers[3].share == std::vector<double>{1.0, 0.0, 0.0});
  CHECK(fig.oracle == 1);  // "b" matches "b@1.0.0"
  CHECK(eval::routing_figure(sample_routing(), "").oracle == -1);

  const std::string svg = eval::routing_svg(fig);
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"routing-plot\"", 0) == 0);
  CHECK(count(svg, "class=\"cell\"") == 12);
  CHECK(count(svg, "<g class=\"oracle\">") == 1);
  CHECK_THAT(svg, Catch::Contains("b@1.0.0 (oracle)"));
  CHECK_THAT(svg, Catch::Contains("data-layer=\"decoder.1\" data-share=\"1.0000\""));
  CHECK_THAT(svg, Catch::Contains(">encoder</text>"));
  CHECK_THAT(svg, Catch::Contains(">decoder</text>"));
}

TEST_CASE("the JSON report's routing section: oracle share and share entropy per layer", "[eval][routing_plot]") {
  CHECK(eval::share_entropy({1.0, 0.0, 0.0}) == 0.0);
  CHECK(eval::share_entropy({0.25, 0.25, 0.25, 0.25}) == Approx(1.0));
  CHECK(eval::share_entropy({0.5, 0.5, 0.0}) == Approx(std::log(2.0) / std::log(3.0)));

  eval::Report report;
  report.routing.push_back(sample_routing());
  // b is the best single expert on rte: the oracle.
  report.methods = {{"Single a@1.0.0", "single", false, ""}, {"Single b@1.0.0", "single", false, ""},
                    {"PHATGOOSE", "router", true, ""}};
  report.rows.push_back({"Single a@1.0.0", "rte", "t0", "accuracy", 0.4, 10});
  report.rows.push_back({"Single b@1.0.0", "rte", "t0", "accuracy", 0.7, 10});
  report.rows.push_back({"PHATGOOSE", "rte", "t0", "accuracy", 0.6, 10});
  auto j = eval::report_json(report);
  REQUIRE(j.contains("routing"));
  REQUIRE(j["routing"].size() == 1);
  const auto& r = j["routing"][0];
  CHECK(r["method"] == "PHATGOOSE");
  CHECK(r["oracle"] == "b@1.0.0");
  REQUIRE(r["layers"].size() == 4);
  CHECK(r["layers"][0]["oracle_share"].get<double>() == Approx(0.5));
  CHECK(r["layers"][1]["oracle_share"].get<double>() == Approx(0.0));
  CHECK(r["layers"][1]["entropy"].get<double>() == Approx(0.0));
  CHECK(r["layers"][1]["top"] == "c@1.0.0");
  // Slot-weighted over the layers: (8 + 0 + 1 + 0) of (16 + 16 + 4 + 4) slots.
  CHECK(r["oracle_share"].get<double>() == Approx(9.0 / 40.0));
  // Without single-expert rows there is no oracle.
  eval::Report bare;
  bare.routing.push_back(sample_routing());
  auto jb = eval::report_json(bare);
  CHECK(jb["routing"][0]["oracle"].is_null());
  CHECK_FALSE(jb["routing"][0].contains("oracle_share"));
}

TEST_CASE("the HTML report renders in headless Chromium with its routing plots", "[eval][routing_plot][chromium]") {
  const auto which = test::run_command({"sh", "-c", "command -v chromium"});
  if (which.exit_code != 0)
    FAIL("chromium is not installed: install the packages in scripts/packages.txt (scripts/setup)");
  TempDir tmp;
  eval::Report report;
  report.methods = {{"PHATGOOSE", "router", true, {}}, {"Single b@1.0.0", "single", false, {}}};
  report.rows = {{"PHATGOOSE", "rte", "t0", "accuracy", 0.6, 10}, {"Single b@1.0.0", "rte", "t0", "accuracy", 0.7, 10}};
  report.routing = {sample_routing()};
  auto written = eval::write_html_report(report, tmp / "report.html");
  REQUIRE(written.size() == 2);
  CHECK(written[1] == tmp / "report.routing" / "phatgoose" / "t0-rte.svg");
  CHECK(std::filesystem::exists(written[1]));
  const std::string html = test::read_text(tmp / "report.html");
  CHECK_THAT(html, Catch::Contains("href=\"report.routing/phatgoose/t0-rte.svg\""));

  const std::string url = "file://" + (tmp / "report.html").string();
  auto shot_args = chromium_args(tmp / "profile1");
  shot_args.push_back("--screenshot=" + (tmp / "shot.png").string());
  shot_args.push_back("--window-size=1200,900");
  shot_args.push_back(url);
  auto shot = test::run_command(shot_args);
  INFO(shot.err);
  REQUIRE(std::filesystem::exists(tmp / "shot.png"));
  Image img = decode_png(test::read_text(tmp / "shot.png"));
  CHECK(img.width == 1200);
  CHECK(img.height == 900);
  std::size_t non_white = 0, blue = 0;
  std::set<std::uint32_t> colours;
  for (std::size_t i = 0; i + 2 < img.rgb.size(); i += 3) {
    const int r = img.rgb[i], g = img.rgb[i + 1], b = img.rgb[i + 2];
    if (r < 240 || g < 240 || b < 240) ++non_white;
    if (b > 80 && r < 60 && g < 90) ++blue;  // the darkest heat-map cells
    colours.insert((std::uint32_t(r) << 16) | (std::uint32_t(g) << 8) | std::uint32_t(b));
  }
  CHECK(non_white > img.rgb.size() / 3 / 100);  // more than 1% of the page is drawn
  CHECK(blue > 200);                            // at least a few full-share cells are visible
  CHECK(colours.size() > 10);

  auto dom_args = chromium_args(tmp / "profile2");
  dom_args.push_back("--dump-dom");
  dom_args.push_back(url);
  auto dom = test::run_command(dom_args);
  INFO(dom.err);
  REQUIRE(dom.exit_code == 0);
  CHECK(count(dom.out, "class=\"routing-plot\"") == 1);
  CHECK(count(dom.out, "class=\"cell\"") == 12);
  CHECK(count(dom.out, "class=\"oracle\"") == 1);
  CHECK_THAT(dom.out, Catch::Contains("<table id=\"results\">"));
  CHECK_THAT(dom.out, Catch::Contains("PHATGOOSE"));
}
