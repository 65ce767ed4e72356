{
  "targets": [
    {
      "target_name": "knockgate_pcap",
      "sources": ["native/pcap_capture.c", "native/frame_udp.c", "native/spa_gate.c", "native/spa_open.c", "native/nft_run.c", "native/nft_elements.c", "native/mem_trim.cc"],
      "libraries": ["-lpcap", "-lcrypto", "-ldl"],
      # -O3 for C: the SPA gate's base64 alphabet check vectorizes (native/spa_gate.c, is_b64_text)
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
