/* Spins in a known function, called from a known caller. */
__attribute__((noinline)) static void ig_busy_leaf(volatile unsigned long *n)
{
	for (;;)
		(*n)++;
}

__attribute__((noinline)) void ig_busy_caller(volatile unsigned long *n)
{
	ig_busy_leaf(n);
	(*n)--;
}

int main(void)
{
	volatile unsigned long n = 0;
	ig_busy_caller(&n);
	return 0;
}
