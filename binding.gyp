{
  "targets": [
    {
      "target_name": "knockgate_pcap",
      "sources": ["native/pcap_capture.c", "native/frame_udp.c", "native/spa_gate.c"],
      "libraries": ["-lpcap", "-lcrypto"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
