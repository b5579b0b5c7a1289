{
  "targets": [
    {
      "target_name": "mail_queue_core",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/core_registry.cc",
        "native/core/active_queue.cpp",
        "native/core/connection_goal.cpp",
        "native/core/connection_ledger.cpp",
        "native/core/lease_table.cpp",
        "native/core/core.cpp",
        "native/core/message_table.cpp",
        "native/core/rate_throttle.cpp",
        "native/core/run_node_pool.cpp",
        "native/core/run_skiplist.cpp",
        "native/core/status.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra"],
      "configurations": {
        "Debug": {
          "defines": ["NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS"]
        }
      }
    }
  ]
}
