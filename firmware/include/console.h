/* vmxu firmware console: the 16550 UART at port 0x3F8 (COM1), libc-free. */
#ifndef VMXU_CONSOLE_H
#define VMXU_CONSOLE_H

#include <stdint.h>

void console_putc(char c);
void console_puts(const char *s);      /* no newline added */
void console_put_hex(uint32_t value);  /* 8 hex digits */
/* A small printf: %s %c %d %i %u %x %X %p %%, with '-', '0' and a width; 'l' is accepted and ignored.
 * Arguments are 32 bits. Format checking is on with clang only: GCC's riscv*-elf makes uint32_t a
 * long, so it would ask for %lx where clang asks for %x. */
#ifdef __clang__
#define VMXU_PRINTF_FORMAT __attribute__((format(printf, 1, 2)))
#else
#define VMXU_PRINTF_FORMAT
#endif
int printf(const char *format, ...) VMXU_PRINTF_FORMAT;

#endif /* VMXU_CONSOLE_H */
