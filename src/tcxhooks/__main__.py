from tcxhooks.cli import main

main()
