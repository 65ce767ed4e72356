{
  "targets": [
    {
      "target_name": "knockgate_pcap",
      "sources": ["native/pcap_capture.c"],
      "libraries": ["-lpcap"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
