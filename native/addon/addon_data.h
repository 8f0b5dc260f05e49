// Per-environment data of the addon: the constructors of its native object classes (a Node
// environment holds one instance-data slot, so they share it).
#pragma once

#include <napi.h>

namespace sdnode_addon {

struct AddonData {
  Napi::FunctionReference model;
  Napi::FunctionReference safetyChecker;
  Napi::FunctionReference upscaler;
};

// Created on first use; freed with the environment.
inline AddonData& addonData(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!data) {
    data = new AddonData();
    env.SetInstanceData<AddonData>(data);
  }
  return *data;
}

}  // namespace sdnode_addon
