// A Verilator main for the SoC without cocotb: load an image, run, print the console.
//
// usage: soc_sim IMAGE.bin MAX_CYCLES
// The console goes to stdout as the firmware writes it; the last line on stderr is
//   {"cycles": N, "instructions": N, "exit_code": N, "seconds": S}
// with exit_code 65536 when the cycle limit ends the run (sim/native/run.py reads it). cycles is the SoC's
// count, as docs/tools.md defines it for every harness.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vsoc.h"
#include "verilated.h"

static void tick(Vsoc* soc) {
    soc->clk = 0;
    soc->eval();
    soc->clk = 1;
    soc->eval();
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s IMAGE.bin MAX_CYCLES\n", argv[0]);
        return 2;
    }
    FILE* f = std::fopen(argv[1], "rb");
    if (!f) {
        std::perror(argv[1]);
        return 2;
    }
    std::vector<uint8_t> image;
    for (int c; (c = std::fgetc(f)) != EOF;) image.push_back(uint8_t(c));
    std::fclose(f);
    const uint64_t max_cycles = std::strtoull(argv[2], nullptr, 0);

    Verilated::commandArgs(argc, argv);
    Vsoc* soc = new Vsoc;
    // Reset and hold stay high while the image is written (zero words are skipped: a fresh model's RAM is
    // zero) and fall together, so the core's first cycle finds every register in its reset state whatever
    // the load took, as sim/cocotb/soc_tb.py does. With reset released before the load, the held core's
    // fetch strobe met a RAM acknowledge toggling every cycle, and the first fetch took one cycle or two
    // after the parity of the words written (docs/tools.md).
    soc->rst = 1;
    soc->hold = 1;
    soc->uart_rx = 1;
    soc->smi_button = 0;  // SMM: no button press (docs/smm-soc.md)
    for (int i = 0; i < 2; i++) tick(soc);
    soc->load_en = 1;
    for (size_t i = 0; i < image.size(); i += 4) {
        uint32_t word = 0;
        for (size_t b = 0; b < 4 && i + b < image.size(); b++) word |= uint32_t(image[i + b]) << (8 * b);
        if (!word) continue;
        soc->load_addr = i / 4;
        soc->load_data = word;
        tick(soc);
    }
    soc->load_en = 0;
    soc->rst = 0;
    soc->hold = 0;

    auto start = std::chrono::steady_clock::now();
    // soc->cycles counts the edges from this first one up to and including the one that writes the finisher.
    uint64_t cycle = 0;
    for (; cycle < max_cycles && !soc->done; cycle++) {
        tick(soc);
        if (soc->console) std::fputc(soc->console_data, stdout);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fflush(stdout);
    std::fprintf(stderr, "{\"cycles\": %llu, \"instructions\": %llu, \"exit_code\": %u, \"seconds\": %.3f}\n",
                 (unsigned long long)soc->cycles, (unsigned long long)soc->retired,
                 soc->done ? unsigned(soc->code) : 65536u, seconds);
    soc->final();
    delete soc;
    return 0;
}
