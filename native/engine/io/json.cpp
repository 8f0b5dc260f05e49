#include "json.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace sdnode {

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& entry : object) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;
// Each value takes ~110 bytes parsed, ~50 times its smallest text ("0,"): without a bound, a
// 100 MB safetensors header of zeros would take 5 GB. A real header has ~10 values per tensor.
constexpr size_t kMaxValues = size_t(1) << 20;

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  JsonValue parseDocument() {
    JsonValue value = parseValue(0);
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected trailing characters");
    return value;
  }

 private:
  const std::string& text_;
  size_t pos_ = 0;
  size_t values_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) pos_++;
  }

  char peek() {
    skipSpace();
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_];
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    pos_++;
  }

  bool consumeWord(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (text_.compare(pos_, n, word) != 0) return false;
    pos_ += n;
    return true;
  }

  JsonValue parseValue(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    if (++values_ > kMaxValues) fail("more than " + std::to_string(kMaxValues) + " values");
    JsonValue value;
    char c = peek();
    if (c == '{') {
      value.kind = JsonValue::Kind::Object;
      pos_++;
      if (peek() == '}') { pos_++; return value; }
      while (true) {
        if (peek() != '"') fail("expected a string key");
        std::string key = parseString();
        expect(':');
        value.object.emplace_back(std::move(key), parseValue(depth + 1));
        char next = peek();
        pos_++;
        if (next == '}') break;
        if (next != ',') fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      value.kind = JsonValue::Kind::Array;
      pos_++;
      if (peek() == ']') { pos_++; return value; }
      while (true) {
        value.array.push_back(parseValue(depth + 1));
        char next = peek();
        pos_++;
        if (next == ']') break;
        if (next != ',') fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      value.kind = JsonValue::Kind::String;
      value.string = parseString();
    } else if (consumeWord("true")) {
      value.kind = JsonValue::Kind::Bool;
      value.boolean = true;
    } else if (consumeWord("false")) {
      value.kind = JsonValue::Kind::Bool;
    } else if (consumeWord("null")) {
      value.kind = JsonValue::Kind::Null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      parseNumber(value);
    } else {
      fail("unexpected character");
    }
    return value;
  }

  void parseNumber(JsonValue& value) {
    size_t start = pos_;
    if (text_[pos_] == '-') pos_++;
    bool integral = true;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c >= '0' && c <= '9') { pos_++; continue; }
      if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && pos_ > start)) { integral = false; pos_++; continue; }
      break;
    }
    std::string token = text_.substr(start, pos_ - start);
    if (token.empty() || token == "-") fail("bad number");
    value.kind = JsonValue::Kind::Number;
    char* end = nullptr;
    value.number = std::strtod(token.c_str(), &end);
    if (end == nullptr || *end != '\0' || !std::isfinite(value.number)) fail("bad number");
    if (integral && token.size() <= 18) {
      value.isInteger = true;
      value.integer = std::strtoll(token.c_str(), nullptr, 10);
    }
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t parseHex4() {
    if (pos_ + 4 > text_.size()) fail("short \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; i++) {
      char h = text_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= h - '0';
      else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
      else fail("bad \\u escape");
    }
    return cp;
  }

  std::string parseString() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (pos_ >= text_.size()) fail("unterminated escape");
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parseHex4();
          if (cp >= 0xD800 && cp <= 0xDBFF && text_.compare(pos_, 2, "\\u") == 0) {
            pos_ += 2;
            uint32_t low = parseHex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default: fail("unknown escape");
      }
    }
    return out;
  }
};

}  // namespace

JsonValue parseJson(const std::string& text) { return Parser(text).parseDocument(); }

}  // namespace sdnode
