/* vmxu firmware console: characters out of the 16550 UART at COM1 (port I/O), and a small printf. */
#include <stdarg.h>

#include "console.h"
#include "vmxu.h"

#define UART_THR 0 /* transmit holding register (LCR.DLAB = 0) */
#define UART_LSR 5 /* line status register */
#define UART_LSR_THRE 0x20

void console_putc(char c)
{
    while (!(inb(VMXU_PORT_UART + UART_LSR) & UART_LSR_THRE))
        ;
    outb(VMXU_PORT_UART + UART_THR, (uint8_t)c);
}

void console_puts(const char *s)
{
    while (*s)
        console_putc(*s++);
}

static const char hex_digits[] = "0123456789abcdef";

void console_put_hex(uint32_t value)
{
    for (int shift = 28; shift >= 0; shift -= 4)
        console_putc(hex_digits[(value >> shift) & 0xF]);
}

/* One converted number or string, padded to width. */
static int emit(const char *text, int length, int width, int left, char pad)
{
    int written = 0;
    if (!left && pad == '0' && length > 0 && text[0] == '-') {
        console_putc('-');
        text++;
        length--;
        width--;
        written++;
    }
    for (; !left && width > length; width--, written++)
        console_putc(pad);
    for (int i = 0; i < length; i++, written++)
        console_putc(text[i]);
    for (; left && width > length; width--, written++)
        console_putc(' ');
    return written;
}

static int format_unsigned(char *end, uint32_t value, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : hex_digits;
    int length = 0;
    do {
        *--end = digits[value % base];
        value /= base;
        length++;
    } while (value);
    return length;
}

int printf(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int written = 0;
    char buffer[12];
    char *end = buffer + sizeof buffer;
    for (const char *p = format; *p; p++) {
        if (*p != '%') {
            console_putc(*p);
            written++;
            continue;
        }
        p++;
        int left = 0, width = 0;
        char pad = ' ';
        for (; *p == '-' || *p == '0'; p++) {
            if (*p == '-')
                left = 1;
            else
                pad = '0';
        }
        for (; *p >= '0' && *p <= '9'; p++)
            width = width * 10 + (*p - '0');
        while (*p == 'l')
            p++;
        int length;
        switch (*p) {
        case 's': {
            const char *s = va_arg(args, const char *);
            if (!s)
                s = "(null)";
            for (length = 0; s[length]; length++)
                ;
            written += emit(s, length, width, left, ' ');
            break;
        }
        case 'c': {
            char c = (char)va_arg(args, int);
            written += emit(&c, 1, width, left, ' ');
            break;
        }
        case 'd':
        case 'i': {
            int32_t value = va_arg(args, int32_t);
            uint32_t magnitude = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
            length = format_unsigned(end, magnitude, 10, 0);
            if (value < 0)
                end[-++length] = '-';
            written += emit(end - length, length, width, left, pad);
            break;
        }
        case 'u':
            length = format_unsigned(end, va_arg(args, uint32_t), 10, 0);
            written += emit(end - length, length, width, left, pad);
            break;
        case 'x':
        case 'X':
            length = format_unsigned(end, va_arg(args, uint32_t), 16, *p == 'X');
            written += emit(end - length, length, width, left, pad);
            break;
        case 'p':
            console_puts("0x");
            length = format_unsigned(end, (uint32_t)(uintptr_t)va_arg(args, void *), 16, 0);
            written += 2 + emit(end - length, length, 8, 0, '0');
            break;
        case '%':
            console_putc('%');
            written++;
            break;
        case '\0':
            p--; /* a lone '%' at the end */
            break;
        default:
            console_putc('%');
            console_putc(*p);
            written += 2;
            break;
        }
    }
    va_end(args);
    return written;
}
