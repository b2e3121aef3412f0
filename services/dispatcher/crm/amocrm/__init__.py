"""amoCRM / Kommo adapter (`[crm:NAME] type = amocrm`): each leg logged once, with its recording."""
