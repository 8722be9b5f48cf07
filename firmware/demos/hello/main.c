/* hello: the smallest vmxu program: a greeting on the UART, the CPUID vendor string, a pass. */
#include "console.h"
#include "vmxu.h"

int main(void)
{
    char vendor[13];
    uint32_t parts[3] = {cpuid(0, CPUID_EBX), cpuid(0, CPUID_EDX), cpuid(0, CPUID_ECX)};
    for (int i = 0; i < 12; i++)
        vendor[i] = (char)(parts[i / 4] >> (8 * (i % 4)));
    vendor[12] = '\0';

    outb(VMXU_PORT_POST, 0x01);
    printf("Hello from vmxu! This is an RV32I core with the VMX extension.\n");
    printf("CPUID vendor: %s, VMX: %s\n", vendor, cpuid(1, CPUID_ECX) & (1u << 5) ? "yes" : "no");
    return 0;
}
