// Conversions between JS values and engine structs. Run on the main thread only.
#pragma once

#include <napi.h>

#include "sdnode.h"

namespace sdnode_addon {

// Throws Napi::TypeError naming the field when the lib/ layer handed over something malformed.
sdnode::Request requestFromJs(const Napi::Object& object);
sdnode::LoadParams loadParamsFromJs(const std::string& path, const Napi::Object& options);
sdnode::ConvertParams convertParamsFromJs(const std::string& input, const std::string& output, const Napi::Object& options);
sdnode::SafetyCheckerParams safetyCheckerParamsFromJs(const std::string& path, const Napi::Object& options);
sdnode::UpscalerParams upscalerParamsFromJs(const std::string& path, const Napi::Object& options);
// { tile, overlap }; the callbacks are the worker's business.
sdnode::UpscaleOptions upscaleOptionsFromJs(const Napi::Object& options);

// The stage API's values (sdnode::EncodedText, LatentBatch, SampleRequest).
sdnode::Conditioning conditioningFromJs(const Napi::Object& object);
std::vector<sdnode::LoraFile> lorasFromJs(const Napi::Value& value);
sdnode::EncodedText encodedTextFromJs(const Napi::Object& object);
sdnode::TextRequest textRequestFromJs(const Napi::Object& object);
sdnode::LatentBatch latentFromJs(const Napi::Object& object);
sdnode::SampleRequest sampleRequestFromJs(const Napi::Object& object);
Napi::Object encodedTextToJs(Napi::Env env, const sdnode::EncodedText& text);
Napi::Object latentToJs(Napi::Env env, const sdnode::LatentBatch& latent);

Napi::Object systemInfoToJs(Napi::Env env, const sdnode::SystemInfo& info);
Napi::Object modelInfoToJs(Napi::Env env, const sdnode::ModelInfo& info);
Napi::Object progressToJs(Napi::Env env, const sdnode::Progress& progress);
Napi::Object convertProgressToJs(Napi::Env env, const sdnode::ConvertProgress& progress);
Napi::Object convertResultToJs(Napi::Env env, const sdnode::ConvertResult& result);
Napi::Array imagesToJs(Napi::Env env, const std::vector<sdnode::Image>& images);
Napi::Object countsToJs(Napi::Env env, const std::map<std::string, int>& counts);
Napi::Array stringsToJs(Napi::Env env, const std::vector<std::string>& strings);
Napi::Object safetyCheckerInfoToJs(Napi::Env env, const sdnode::SafetyCheckerInfo& info);
Napi::Object upscalerInfoToJs(Napi::Env env, const sdnode::UpscalerInfo& info);
Napi::Array verdictsToJs(Napi::Env env, const std::vector<sdnode::SafetyVerdict>& verdicts);
// An Error with a stable `code` property.
Napi::Error errorToJs(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace sdnode_addon
